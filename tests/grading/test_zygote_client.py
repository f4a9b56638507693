"""The grading process's side of the zygote (tpkit.grading.zygote_client): started once per set of kernel
settings, only for warm sandboxed kernels, and forking kernels that keep the run's thread count."""
import pytest
from jupyter_client import BlockingKernelClient

from tpkit.grading import kernels, zygote_client


def needs_sandbox():
    from test_sandbox import _UNAVAILABLE
    if _UNAVAILABLE is not None:
        pytest.skip(f"sandbox unavailable on this host: {_UNAVAILABLE}")


def test_no_zygote_for_unsandboxed_or_cold_kernels():
    before = dict(zygote_client._zygotes)
    zygote_client.prestart(kernels.default_settings(sandbox=False))
    zygote_client.prestart(kernels.default_settings(warm=False))
    assert zygote_client._zygotes == before


def test_a_sandbox_that_ended_has_no_holder_to_fork_into():
    with pytest.raises(RuntimeError, match="ended before its kernel started"):
        zygote_client._find_holder(None, timeout=5)


def test_kernels_with_two_threads_are_still_forked():
    """A run with fewer workers than cores gives each kernel several threads: the zygote still imports
    with one (OpenBLAS would otherwise start its pool and nothing could be forked), and the kernel
    then sets torch's threads to the run's."""
    needs_sandbox()
    settings = kernels.default_settings(warm=True, threads=2)
    k = kernels.start_kernel(settings)
    try:
        assert k.forked, "a cold kernel: the zygote refused to fork"
        kc = BlockingKernelClient(connection_file=k.km.connection_file)
        kc.load_connection_file()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            out = []
            kc.execute_interactive("import torch; print(torch.get_num_threads())", timeout=60,
                                   output_hook=lambda m: out.append(m["content"].get("text", "")))
            assert "".join(out).strip() == "2"
        finally:
            kc.stop_channels()
    finally:
        kernels.discard_kernel(k)


def test_a_run_starts_one_zygote_however_often_it_is_asked(monkeypatch):
    """The command starts it early, the grader asks again (with its own folder for kernels): one zygote."""
    made = []

    class Fake:
        def __init__(self, settings):
            made.append(settings)

        def alive(self):
            return True

    monkeypatch.setattr(zygote_client, "Zygote", Fake)
    monkeypatch.setattr(zygote_client, "_zygotes", {})
    zygote_client.prestart(kernels.default_settings(warm=True))
    zygote_client.prestart(kernels.default_settings(warm=True, tmp_root="/tmp/noyaux"))
    assert len(made) == 1
