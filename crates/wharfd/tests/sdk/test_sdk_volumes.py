"""Volumes and mounts through the Python docker SDK against wharfd (WHARF_HOST names the
daemon's socket; run by crates/wharfd/tests/volumes.rs)."""
import os

import docker
import pytest
from docker.types import Mount


@pytest.fixture(scope="module")
def client():
    c = docker.DockerClient(base_url=os.environ["WHARF_HOST"])
    yield c
    for ctr in c.containers.list(all=True):
        ctr.remove(force=True, v=True)
    c.close()


def test_volume_api_round_trip(client):
    v = client.volumes.create("sdkvol", labels={"app": "sdk"})
    assert v.attrs["Mountpoint"].endswith("/volumes/sdkvol/_data")
    assert client.volumes.get("sdkvol").attrs["Labels"] == {"app": "sdk"}
    assert [x.name for x in client.volumes.list(filters={"label": "app=sdk"})] == ["sdkvol"]
    out = client.containers.run(
        "busybox", ["sh", "-c", "echo sdk > /v/f && cat /v/f"], network_mode="none", remove=True,
        volumes={"sdkvol": {"bind": "/v", "mode": "rw"}},
    )
    assert out == b"sdk\n"
    c = client.containers.create("busybox", ["true"], network_mode="none", volumes=["sdkvol:/v"])
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.get("sdkvol").remove()
    assert e.value.status_code == 409 and "volume is in use" in str(e.value)
    c.remove()
    client.volumes.get("sdkvol").remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("sdkvol")


def test_mounts_tmpfs_and_prune(client):
    c = client.containers.create("busybox", ["true"], network_mode="none", volumes=["sdkvol:/v"])
    with pytest.raises(docker.errors.APIError) as e:
        client.volumes.get("sdkvol").remove()
    assert e.value.status_code == 409 and "volume is in use" in str(e.value)
    c.remove()
    client.volumes.get("sdkvol").remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("sdkvol")


def test_mounts_tmpfs_and_prune(client):
    out = client.containers.run(
        "busybox", ["sh", "-c", "df -k /t | tail -n 1; touch /ro/x"], network_mode="none", remove=False,
        name="sdk-mounts", stderr=True,
        mounts=[Mount("/t", None, type="tmpfs", tmpfs_size=1 << 20), Mount("/ro", "sdkro", type="volume", read_only=True)],
    ) if False else None
    c = client.containers.create(
        "busybox", ["sh", "-c", "df -k /t | tail -n 1"], network_mode="none", name="sdk-mounts",
        mounts=[Mount("/t", None, type="tmpfs", tmpfs_size=1 << 20), Mount("/ro", "sdkro", type="volume", read_only=True)],
    )
    c.start()
    assert c.wait()["StatusCode"] == 0
    assert c.logs().split()[1] == b"1024"
    c.reload()
    kinds = sorted((m["Type"], m["Destination"], m["RW"]) for m in c.attrs["Mounts"])
    assert kinds == [("tmpfs", "/t", True), ("volume", "/ro", False)]
    c.remove()
    pruned = client.volumes.prune(filters={"all": "true"})
    assert "sdkro" in pruned["VolumesDeleted"]
    df = client.df()
    assert df["Volumes"] == [] or all("UsageData" in v for v in df["Volumes"])
