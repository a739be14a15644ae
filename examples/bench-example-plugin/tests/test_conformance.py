import pytest


@pytest.mark.bench_encoder("example_randproj")
def test_bench_conformance(bench_check):
    bench_check.assert_ok()
