"""The profiler a run has when none is asked for: Lightning's pass-through profiler without its cost.

Lightning wraps every hook of every callback, and each step of its loops, in `trainer.profiler.profile(name)`:
about a hundred times per optimizer step. Its default, PassThroughProfiler, still builds a generator-based context
manager each time (a couple of microseconds each, a large share of a small model's step); here `profile` hands
back one shared do-nothing context. A run that asks for a profiler (debug=profile: trainer.profiler=simple) gets
Lightning's.
"""

from contextlib import nullcontext

from lightning.pytorch.profilers import PassThroughProfiler

NOTHING = nullcontext()  # reusable: entering it does nothing and returns None


class NoProfiler(PassThroughProfiler):
    def profile(self, action_name: str):
        return NOTHING
