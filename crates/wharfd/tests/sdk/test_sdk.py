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


def test_cp_commit_diff_history_export(client):
    import io
    import tarfile

    c = client.containers.run("busybox", ["sh", "-c", "echo sdk > /made && sleep 100"], network_mode="none", detach=True)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                bits, stat = c.get_archive("/made")
                break
            except docker.errors.NotFound:
                time.sleep(0.05)
        data = b"".join(bits)
        assert stat["name"] == "made"
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            assert tf.extractfile("made").read() == b"sdk\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            payload = b"put by sdk\n"
            info = tarfile.TarInfo("put.txt")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
        assert c.put_archive("/tmp", buf.getvalue())
        assert c.exec_run(["cat", "/tmp/put.txt"]).output == b"put by sdk\n"
        changes = {(d["Path"], d["Kind"]) for d in c.diff()}
        assert ("/made", 1) in changes and ("/tmp/put.txt", 1) in changes
        img = c.commit(repository="sdk/committed", tag="v1", changes=['CMD ["cat", "/made"]'])
        assert client.containers.run(img.id, network_mode="none", remove=True) == b"sdk\n"
        assert len(img.history()) == 2
        exported = b"".join(c.export())
        with tarfile.open(fileobj=io.BytesIO(exported)) as tf:
            assert "made" in tf.getnames()
    finally:
        c.remove(force=True)


def test_save_load_and_events(client):
    since = int(time.time())
    blob = b"".join(client.images.get("busybox").save())
    loaded = client.images.load(blob)
    assert any("busybox:latest" in i.tags for i in loaded)
    c = client.containers.run("busybox", ["true"], network_mode="none", detach=True)
    c.wait()
    c.remove()
    actions = [
        e["Action"]
        for e in client.events(since=since, until=int(time.time()) + 1, decode=True, filters={"type": "container", "container": c.id})
    ]
    assert actions[:1] == ["create"] and "start" in actions and "die" in actions and actions[-1] == "destroy", actions


def test_pause_restart_policy_and_wait(client):
    c = client.containers.run("busybox", ["sleep", "100"], network_mode="none", detach=True)
    try:
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.kill()
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)
    r = client.containers.run(
        "busybox", ["sh", "-c", "exit 1"], network_mode="none", detach=True, restart_policy={"Name": "on-failure", "MaximumRetryCount": 1}
    )
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            r.reload()
            if r.attrs["RestartCount"] == 1 and r.status == "exited":
                break
            time.sleep(0.05)
        assert r.attrs["RestartCount"] == 1 and r.status == "exited"
    finally:
        r.remove(force=True)
