"""The caregiver: its presence over training and how social and internal rewards combine."""
