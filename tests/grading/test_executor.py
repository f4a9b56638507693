"""The grading executor (tpkit.grading.executor.LimitedExecute): its settings come with its kernel supply,
its link to the kernel for the trusted checks. Its runs in real kernels: test_kernels.py, test_cgroups.py."""
from tpkit.grading import config, kernels
from tpkit.grading.executor import LimitedExecute


def test_the_executor_defines_no_run_setting_of_its_own():
    """Its limits are its supply's: no trait of the executor can disagree with the kernel's settings."""
    assert not set(LimitedExecute.class_traits(config=True)) & set(config.setting_names())
    supply = kernels.KernelSupply(kernels.default_settings(time_limit=77))
    own, closed_at_end = LimitedExecute(supply=supply)._supply()
    assert own is supply and not closed_at_end  # the worker's supply: closed by the worker


def test_executor_link_interrupts_with_the_async_kernel_manager():
    """The grading kernel's manager is asynchronous: the witness session's interrupt must be awaited
    (a bare call only creates a coroutine and the kernel runs on)."""
    import logging

    from tpkit.grading.executor import _ExecutorLink
    calls = []

    class Manager:
        async def interrupt_kernel(self):
            calls.append("interrupt")

    class Executor:
        km, log = Manager(), logging.getLogger("test")

        def _get_timeout(self, cell):
            return 7

    link = _ExecutorLink(Executor())
    assert link.timeout == 7
    link.interrupt()
    assert calls == ["interrupt"]
