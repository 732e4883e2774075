import resource

import pytest

from initkit import memlimit


def test_a_big_allocation_fails_fast_inside_and_the_limit_is_restored_after():
    before = resource.getrlimit(resource.RLIMIT_AS)
    with memlimit.limited(64 << 20):
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        assert soft != resource.RLIM_INFINITY
        with pytest.raises(MemoryError):
            bytearray(256 << 20)
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    assert len(bytearray(256 << 20)) == 256 << 20


def test_a_lower_existing_limit_is_kept():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (1 << 45, hard))
    try:
        with memlimit.limited(1 << 50):
            assert resource.getrlimit(resource.RLIMIT_AS)[0] == 1 << 45
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
