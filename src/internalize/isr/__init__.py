"""The internal social reward (ISR) model: a regression of the caregiver's reward on (s, a)."""
