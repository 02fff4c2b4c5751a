"""Rollout slices: which hosts a slice holds, and slices racing on the one release state."""

import json
import multiprocessing
import time

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._release import rollout
from ansible_collections.mo.fleet.plugins.module_utils._release.slices import SliceError, host_slice, parse_slice

HOSTS = [f"web{n}" for n in (5, 1, 4, 2, 6, 3, 7)]


def test_slices_partition_the_hosts_round_robin_by_name():
    slices = [host_slice(HOSTS, f"{k}/3") for k in (1, 2, 3)]
    assert slices == [["web1", "web4", "web7"], ["web2", "web5"], ["web3", "web6"]]
    assert sorted(sum(slices, [])) == sorted(HOSTS)
    assert host_slice(list(reversed(HOSTS)), "2/3") == slices[1]  # inventory order does not matter
    assert host_slice(HOSTS, "") == sorted(HOSTS) == host_slice(HOSTS, "1/1")
    assert host_slice(HOSTS, "9/9") == [] and parse_slice(None) == (1, 1)


@pytest.mark.parametrize("spec", ["0/3", "4/3", "1/0", "a/b", "1/3\n", "1 /3", "-1/3", "1/3/4", 2, "/3"])
def test_a_bad_slice_name_is_one_sentence(spec):
    with pytest.raises(SliceError) as err:
        host_slice(HOSTS, spec)
    message = str(err.value)
    assert message.startswith("field 'rollout_slice': ") and message.endswith(".") and "\n" not in message


def test_hosts_must_be_names():
    with pytest.raises(SliceError, match="field 'hosts'"):
        host_slice("web1", "1/2")


def _slow_reader(real):
    """read_state that waits between reading and returning: a wide read-modify-write window,
    so an update done outside the lock would lose the others' halts."""
    def read(path):
        state = real(path)
        time.sleep(0.01)
        return state
    return read


def _halting_slice(path, number, count, ready):
    rollout.read_state = _slow_reader(rollout.read_state)
    ready.wait()
    for batch in range(count):
        rollout.update_state(path, halt={f"dep-{number}-{batch}": {"failed": 1, "total": 1, "threshold": 0,
                                                                  "hosts": [f"h{number}"]}},
                             lock_timeout=60)


def _reader(path, ready, stop, bad):
    ready.wait()
    while not stop.is_set():
        try:
            state = json.loads(open(path, encoding="utf-8").read())
            assert isinstance(state["halted"], dict)
        except FileNotFoundError:
            continue
        except (ValueError, KeyError, AssertionError):
            bad.value += 1


def test_slices_racing_on_the_release_state_lose_no_halt(tmp_path):
    path = str(tmp_path / "release-state.json")
    ctx = multiprocessing.get_context("fork")
    ready, stop, bad = ctx.Barrier(7), ctx.Event(), ctx.Value("i", 0)
    writers = [ctx.Process(target=_halting_slice, args=(path, n, 10, ready)) for n in range(6)]
    reader = ctx.Process(target=_reader, args=(path, ready, stop, bad))
    for proc in writers + [reader]:
        proc.start()
    for proc in writers:
        proc.join(120)
        assert proc.exitcode == 0
    stop.set()
    reader.join(30)
    halted = rollout.read_state(path)["halted"]
    assert sorted(halted) == sorted(f"dep-{n}-{b}" for n in range(6) for b in range(10))
    assert bad.value == 0  # every read saw a whole state (temp file + rename)


def test_a_deployment_halted_by_two_slices_keeps_the_first_details(tmp_path):
    path = str(tmp_path / "release-state.json")
    rollout.update_state(path, halt={"risky": {"failed": 2, "total": 2, "threshold": 0, "hosts": ["a", "b"]}})
    changed, state, halted_now, _ = rollout.update_state(
        path, halt={"risky": {"failed": 1, "total": 2, "threshold": 0, "hosts": ["c"]}})
    assert not changed and halted_now == [] and state["halted"]["risky"]["hosts"] == ["a", "b"]
