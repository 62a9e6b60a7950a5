"""The overlay in the CLI: ``orion network``, IPs in ``orion ps -o wide`` and ``orion nodes -o wide``,
VIPs and published ports in ``orion service ls``/``status`` (the real app on a loopback socket
over a LocalStore, the leader's part driven by ``ServiceWorld``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from api_kit import NODE
from click.testing import CliRunner, Result
from service_world import WEB, ServiceWorld
from werkzeug.serving import make_server

from orion.cli.main import main
from orion.domain.network import NetworkSettings
from orion.state.commands import AcquireLease, InitNetwork, ReportTaskState


@pytest.fixture
def served() -> Iterator[tuple[ServiceWorld, str]]:
    cluster = ServiceWorld()
    httpd = make_server("127.0.0.1", 0, cluster.http.application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield cluster, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def orion(addr: str, *args: str) -> Result:
    return CliRunner(env={"ORION_ADDR": "", "ORION_API_TOKEN": ""}).invoke(main, ["--addr", addr, *args])


def network_up(cluster: ServiceWorld) -> None:
    cluster.submit(InitNetwork(settings=NetworkSettings()))
    cluster.submit(AcquireLease(node_id=NODE.id, host="0123456789abcdef-engine", underlay_ip="192.0.2.7",
                                underlay_mtu=1500))


def test_network_before_and_after_the_settings(served):
    cluster, addr = served
    before = orion(addr, "network")
    assert before.exit_code == 0 and before.output.startswith("network: not set yet")
    network_up(cluster)
    cluster.http.put("/services/web", json={**WEB, "publish": [{"published": 8080, "target": 80}]})
    shown = orion(addr, "network")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == ("network 10.42.0.0/16 (/24 per host), services 10.43.0.0/16, VXLAN vni 1 port 4789, "
                        "mtu 1450")
    assert lines[1].split() == ["SUBNET", "HOLDERS", "UNDERLAY", "HOST"]
    assert lines[2].split() == ["10.42.0.0/24", "node1", "192.0.2.7", "0123456789ab"]
    assert lines[3] == "1 service VIP(s): web 10.43.0.1"
    wide = orion(addr, "network", "-o", "wide").output.splitlines()
    assert "0e:42:0a:2a:00:00" in wide[2] and "0123456789abcdef-engine" in wide[2]
    assert json.loads(orion(addr, "network", "-o", "json").output)["vips"] == {"web": "10.43.0.1"}
    assert orion(addr, "network", "-q").output.split() == ["10.42.0.0/24"]


def test_ps_and_nodes_wide_show_addresses(served):
    cluster, addr = served
    network_up(cluster)
    cluster.http.put("/services/web", json=WEB)
    cluster.settle()
    for task in cluster.replicas():
        cluster.submit(ReportTaskState(task_id=task.id, node_id=NODE.id, generation=task.generation,
                                       state="running", container_id=f"c-{task.id}", ip=f"10.42.0.{2 + task.slot}"))
    table = orion(addr, "ps").output
    assert "10.42.0.2" not in table  # -o wide only
    wide = orion(addr, "ps", "-o", "wide").output.splitlines()
    assert "IP" in wide[0].split()
    assert sorted(line.split()[0] + " " + next(w for w in line.split() if w.startswith("10.42.")) for line in wide[1:]
                  ) == ["web.0.d1 10.42.0.2", "web.1.d1 10.42.0.3"]
    nodes = orion(addr, "nodes", "-o", "wide").output.splitlines()
    assert "SUBNET" in nodes[0] and "10.42.0.0/24" in nodes[1] and "192.0.2.7" in nodes[1]
    status = orion(addr, "service", "status", "web").output
    assert "reached: vip 10.43.0.1; published -" in status and "10.42.0.3" in status


def test_service_ls_shows_the_vip_or_the_mode_and_published_ports(served):
    cluster, addr = served
    network_up(cluster)
    cluster.http.put("/services/web", json={**WEB, "publish": [{"published": 8080, "target": 80},
                                                                 {"published": 5353, "target": 53, "protocol": "udp"}]})
    cluster.http.put("/services/dns", json={**WEB, "name": "dns", "endpointMode": "dnsrr"})
    rows = {line.split()[0]: line for line in orion(addr, "service", "ls").output.splitlines()}
    assert "VIP" in rows["NAME"] and "PUBLISHED" in rows["NAME"]
    assert "10.43.0.1" in rows["web"] and "5353->53/udp,8080->80/tcp" in rows["web"]
    assert "dnsrr" in rows["dns"]
