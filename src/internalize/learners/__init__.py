"""Policy learners: PPO and its networks."""
