"""A schedule of one's own, named from a config:
`--set schedule.kind=examples.returning_caregiver:make_schedule`.

The caregiver leaves at `switch_step`, as the paper's does, but afterwards still attends a
quarter of the episodes (drawn per environment and episode), with half its reward: a caregiver
who mostly lets go. (`episode_share` holds for every episode of the phase the schedule is given
to; an experiment gives it the autonomy phase, which starts at `switch_step`.) A schedule is a
function `(switch_step, config) -> Presence`; `config` is the run's `ScheduleConfig`, whose
values (`fade_steps`, `episode_share`, ...) it may read or ignore.
"""

from internalize.social.caregiver import Presence, ScheduleConfig, make_presence


def make_schedule(switch_step: float, config: ScheduleConfig) -> Presence:
    return make_presence(before=1.0, after=0.5, switch_step=switch_step, episode_share=0.25)
