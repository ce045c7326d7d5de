"""``promote-best EXP --backend cluster`` selects from Katib's trials through the one ranking and finds the
checkpoint on S3 where the trial template put it (``--output_dir=s3://.../${trialParameters.trialName}``)."""

from __future__ import annotations

import pytest

from tests.experiments.backends.cluster.katib_world import NS, Outcome, cluster_experiment, play_katib


@pytest.fixture
def s3(monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="katib-suite-models")
    try:
        yield client
    finally:
        server.stop()


def test_promote_selects_the_best_katib_trial_with_a_complete_checkpoint(platform, tmp_path, s3, monkeypatch):
    from serving.promote_select import open_experiment, select_trial

    monkeypatch.chdir(tmp_path)
    exp = cluster_experiment(tmp_path)
    names = play_katib(platform, exp, [
        Outcome("aaaaaaaa", "1e-4", "16", accuracy=("0.61",)),
        Outcome("bbbbbbbb", "8e-4", "32", condition="EarlyStopped", accuracy=("0.74",)),  # best, no checkpoint
        Outcome("cccccccc", "3e-3", "64", accuracy=("0.70",)),
    ])  # fmt: skip
    for name in (names[0], names[2]):
        s3.put_object(Bucket="katib-suite-models", Key=f"katib/quickstart/{name}/trial.json", Body=b"{}")

    handle = open_experiment("quickstart", "cluster", namespace=NS)
    selection = select_trial(handle, backend="cluster")
    assert selection.katib_optimal == names[1]
    assert selection.trial.name == names[2]
    assert selection.checkpoint == f"s3://katib-suite-models/katib/quickstart/{names[2]}"
    assert f"{names[1]} is EarlyStopped and has no complete checkpoint" in selection.reason
    assert selection.backend == "cluster"


def test_promote_best_cli_looks_the_experiment_up_in_the_namespace_it_is_given(platform, tmp_path, capsys):
    from serving.cli import main

    code = main(
        ["quickstart", "--backend", "cluster", "--namespace", "elsewhere", "--to", str(tmp_path / "m")]
    )
    _, err = capsys.readouterr()
    assert code != 0 and "Traceback" not in err
    assert "quickstart" in err and "elsewhere" in err, err
