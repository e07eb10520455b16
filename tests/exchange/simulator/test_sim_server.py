"""Lifecycle, configuration, public API and the CLI command."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import types
from datetime import timedelta

import httpx
import pytest
from _sim_signing import KEY, SECRET, Signer
from click.testing import CliRunner

import aimax.exchange.simulator as pkg
from aimax._metrics import MetricsSource
from aimax.errors import ConfigurationError
from aimax.exchange.simulator import Latency, MaxSimulator, SimulatorConfig
from aimax.exchange.simulator.cli import command


def _sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aimax-max-simulator"]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(pkg).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(pkg.__all__) == public
    assert len(pkg.__all__) == len(set(pkg.__all__))


def test_thread_lifecycle_is_idempotent_and_leaves_nothing() -> None:
    sim = MaxSimulator(SimulatorConfig(n_markets=2, history_seconds=0))
    with pytest.raises(ConfigurationError, match="not started"):
        _ = sim.url
    assert "stopped" in repr(sim)
    assert sim.start() is sim
    assert sim.start() is sim  # a second start is a no-op
    url = sim.url
    assert url.startswith("http://127.0.0.1:")
    assert sim.port > 0
    assert httpx.get(f"{url}/api/v3/timestamp", timeout=30).status_code == 200
    assert len(_sim_threads()) == 1
    sim.stop()
    sim.stop()
    assert not sim.running
    assert _sim_threads() == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/v3/timestamp", timeout=5)


def test_two_simulators_side_by_side() -> None:
    cfg = SimulatorConfig(n_markets=2, history_seconds=0)
    with MaxSimulator(cfg) as a, MaxSimulator(cfg) as b:
        assert a.port != b.port
        assert (
            httpx.get(f"{a.url}/api/v3/markets", timeout=30).json()
            == httpx.get(f"{b.url}/api/v3/markets", timeout=30).json()
        )
    assert _sim_threads() == []


def test_a_busy_port_is_reported() -> None:
    with MaxSimulator(SimulatorConfig(n_markets=1, history_seconds=0)) as first:
        taken = MaxSimulator(SimulatorConfig(n_markets=1, history_seconds=0), port=first.port)
        with pytest.raises(OSError, match="in use"):
            taken.start()
    assert _sim_threads() == []


async def test_inside_a_running_loop() -> None:
    import aiohttp

    config = SimulatorConfig(n_markets=3, history_seconds=0)
    async with (
        MaxSimulator(config) as sim,
        aiohttp.ClientSession() as session,
        session.get(f"{sim.url}/api/v3/ticker?market=btctwd") as r,
    ):
        assert r.status == 200
        assert (await r.json())["market"] == "btctwd"
    assert not sim.running
    assert _sim_threads() == []


def test_repr_and_stats_never_show_keys(sim: MaxSimulator, signer: Signer) -> None:
    assert signer.get("/api/v3/info").status_code == 200
    text = repr(sim) + repr(sim.stats())
    assert KEY not in text
    assert SECRET not in text
    assert "alice" in repr(sim.stats())
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.stats().requests = 0  # type: ignore[misc]
    assert isinstance(sim, MetricsSource)
    names = {s.name for s in sim.metric_samples()}
    assert "aimax_simulator_requests_total" in names
    sim.reset_stats()
    assert sim.stats().requests == 0
    assert sim.balances("alice")["btc"] == (2, 0)


def test_config_validation_and_scaling() -> None:
    cfg = SimulatorConfig.scaled(0.1)
    assert (cfg.public_limit, cfg.private_limit, cfg.window_s, cfg.ban_s) == (120, 120, 6.0, 6.0)
    assert SimulatorConfig(window=timedelta(minutes=1)).window_s == 60.0
    assert SimulatorConfig.scaled(0.1, n_markets=200).n_markets == 200
    bad = [
        {"public_limit": 0},
        {"private_limit": -1},
        {"window": 0},
        {"ban_seconds": -1},
        {"error_rate": 1.5},
        {"timeout_rate": -0.1},
        {"n_markets": 0},
        {"maker_fee": "abc"},
        {"error_status": 404},
        {"endpoint_weights": {"GET /api/v3/depth": 0}},
        {"latency": "slow"},
        {"latency": (0.2, 0.1)},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigurationError):
            SimulatorConfig(**kwargs)  # type: ignore[arg-type]
    assert SimulatorConfig(latency=0.1).latency_model == Latency.constant(0.1)
    assert SimulatorConfig(latency=(0.1, 0.2)).latency_model == Latency.uniform(0.1, 0.2)
    with pytest.raises(ConfigurationError, match="scale"):
        SimulatorConfig.scaled(0)
    with pytest.raises(ConfigurationError):
        MaxSimulator(port=70000)
    with pytest.raises(ConfigurationError):
        MaxSimulator({"n_markets": 3})  # type: ignore[arg-type]


def test_controls_reject_bad_values(sim: MaxSimulator) -> None:
    with pytest.raises(ConfigurationError):
        sim.set_price("nosuch", "1")
    with pytest.raises(ConfigurationError):
        sim.set_market_status("btctwd", "closed")
    with pytest.raises(ConfigurationError):
        sim.add_account("", "secret")
    assert sim.add_account(KEY, SECRET, {"usdt": "1"}) == "alice"  # known key: funded again


def test_cli_help_and_bad_account() -> None:
    runner = CliRunner()
    result = runner.invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "--scale" in result.output
    bad = runner.invoke(command, ["--account", "no-colon"])
    assert bad.exit_code != 0
    assert "KEY:SECRET" in bad.output


def test_cli_serves_until_interrupted() -> None:
    code = "from aimax.exchange.simulator.cli import command; command()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--markets",
            "5",
            "--scale",
            "0.1",
            "--account",
            "k1:s1",
            "--balance",
            "twd=1000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "MAX simulator on http://127.0.0.1:" in line, (
            proc.stderr.read() if proc.stderr else ""
        )
        url = line.split(" on ")[1].split(":", 2)
        base = f"http:{url[1]}:{url[2].split(':')[0]}"
        assert "120/6s" in line
        with httpx.Client(base_url=base, timeout=30) as http:
            assert len(http.get("/api/v3/markets").json()) == 5
            signer = Signer(http, "k1", "s1")
            twd = signer.get("/api/v3/wallet/spot/accounts", {"currency": "twd"}).json()[0]
            assert twd["balance"] == "1000.0"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert "stopped: 2 requests" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
