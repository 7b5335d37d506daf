"""Registry calls of the Python docker SDK against wharfd (WHARF_HOST names the daemon's
socket, REGISTRY a basic-auth registry with user alice / s3cret; run by
crates/wharfd/tests/registry_auth.rs)."""
import os

import docker
import pytest


@pytest.fixture(scope="module")
def client():
    c = docker.DockerClient(base_url=os.environ["WHARF_HOST"])
    yield c
    c.close()


def test_login_push_pull(client):
    reg = os.environ["REGISTRY"]
    with pytest.raises(docker.errors.APIError) as e:
        client.login(username="alice", password="wrong", registry=reg)
    assert e.value.status_code == 401
    assert client.login(username="alice", password="s3cret", registry=reg)["Status"] == "Login Succeeded"

    repo = f"{reg}/sdk/app"
    assert client.images.get("busybox").tag(repo, "v1")
    # The SDK sends the credentials of the login above in X-Registry-Auth.
    lines = list(client.images.push(repo, tag="v1", stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    assert any("digest" in l.get("aux", {}) or "digest:" in l.get("status", "") for l in lines), lines

    client.images.remove(f"{repo}:v1")
    img = client.images.pull(repo, tag="v1", auth_config={"username": "alice", "password": "s3cret"})
    assert f"{repo}:v1" in img.tags
    assert client.containers.run(img.id, ["echo", "pulled"], network_mode="none", remove=True) == b"pulled\n"


def test_pull_without_credentials_is_refused(client):
    reg = os.environ["REGISTRY"]
    client.images.remove(f"{reg}/sdk/app:v1", force=True)
    anon = docker.DockerClient(base_url=os.environ["WHARF_HOST"])
    # The low-level call shows the daemon's error line (images.pull swallows it).
    lines = list(anon.api.pull(f"{reg}/sdk/app", tag="v1", stream=True, decode=True))
    assert any("error" in l and "401" in l["error"] for l in lines), lines
    with pytest.raises(docker.errors.ImageNotFound):
        anon.images.get(f"{reg}/sdk/app:v1")
    anon.close()


def test_registry_data_and_all_tags(client):
    reg = os.environ["REGISTRY"]
    auth = {"username": "alice", "password": "s3cret"}
    repo = f"{reg}/sdk/tags"
    for t in ("a", "b"):
        assert client.images.get("busybox").tag(repo, t)
        lines = list(client.images.push(repo, tag=t, stream=True, decode=True, auth_config=auth))
        assert not [l for l in lines if "error" in l], lines
    # GET /distribution/{name}/json
    data = client.images.get_registry_data(f"{repo}:a", auth_config=auth)
    assert data.id.startswith("sha256:")
    assert data.has_platform("linux/amd64")
    assert not data.has_platform("linux/arm64")
    # POST /images/create without a tag: every tag.
    for t in ("a", "b"):
        client.images.remove(f"{repo}:{t}")
    images = client.images.pull(repo, all_tags=True, auth_config=auth)
    assert sorted(t for i in images for t in i.tags if t.startswith(repo)) == [f"{repo}:a", f"{repo}:b"]
