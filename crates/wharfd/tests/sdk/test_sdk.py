"""The Python docker SDK against wharfd (WHARF_HOST names the daemon's socket)."""
import os
import time

import docker
import pytest


@pytest.fixture(scope="module")
def client():
    c = docker.DockerClient(base_url=os.environ["WHARF_HOST"])
    yield c
    for ctr in c.containers.list(all=True):
        ctr.remove(force=True)
    c.close()


def test_ping_and_version(client):
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.50"
    assert v["Components"][0]["Name"] == "Engine"


def test_run_returns_output_and_removes(client):
    out = client.containers.run("busybox", ["echo", "hi from sdk"], network_mode="none", remove=True)
    assert out == b"hi from sdk\n"
    assert all("hi from sdk" not in " ".join(c.attrs["Args"]) for c in client.containers.list(all=True))


def test_nonzero_exit_raises_container_error(client):
    with pytest.raises(docker.errors.ContainerError) as e:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 4"], network_mode="none")
    assert e.value.exit_status == 4
    assert b"oops" in e.value.stderr


def test_detached_lifecycle_logs_exec_stop(client):
    c = client.containers.run(
        "busybox", ["sh", "-c", "echo started; exec sleep 100"], network_mode="none", detach=True, name="sdk-bg"
    )
    try:
        deadline = time.time() + 10
        while b"started" not in c.logs() and time.time() < deadline:
            time.sleep(0.05)
        assert c.logs() == b"started\n"
        c.reload()
        assert c.status == "running"
        code, out = c.exec_run(["sh", "-c", "echo $((6*7)); exit 2"])
        assert (code, out) == (2, b"42\n")
        assert client.containers.get("sdk-bg").id == c.id
        c.stop(timeout=1)
        c.reload()
        assert c.status == "exited"
        assert c.attrs["State"]["ExitCode"] == 137
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("sdk-bg")


def test_images(client):
    img = client.images.get("busybox")
    assert "busybox:latest" in img.tags
    img.tag("sdk/copy", "v1")
    assert "sdk/copy:v1" in client.images.get("sdk/copy:v1").tags
    client.images.remove("sdk/copy:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("sdk/copy:v1")
