"""The reader's training script: settings that depend on the machine it runs on."""

from qa.weights import train_reader as tr


def test_bf16_only_where_the_cpu_has_it(monkeypatch):
    flags = {"amx": "flags : fpu sse2 avx2 amx_bf16 amx_int8\n", "avx512": "flags : fpu avx512f avx512_bf16\n",
             "epyc": "flags : fpu sse2 avx2 avx512f\n"}
    real = tr.Path.read_text
    for name, want in (("amx", True), ("avx512", True), ("epyc", False)):
        monkeypatch.setattr(tr.Path, "read_text", lambda self, *a, name=name, **k: flags[name]
                            if str(self) == "/proc/cpuinfo" else real(self, *a, **k))
        assert tr.cpu_has_bf16() is want


def test_no_cpuinfo_means_no_bf16(monkeypatch):
    def unreadable(self, *a, **k):
        raise OSError("no /proc here")

    monkeypatch.setattr(tr.Path, "read_text", unreadable)
    assert tr.cpu_has_bf16() is False
