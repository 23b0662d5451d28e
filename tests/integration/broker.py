"""Python handle on `deploy/local/kafka.sh`: start, stop, kill and restart a local Kafka broker.

Used by the integration fixtures and by tests that bounce a broker mid-stream:

    broker = LocalBroker("fault-1", owner_pid=os.getpid())
    bootstrap = broker.start()
    broker.stop(signal="KILL", keep_data=True)   # crash it, keep its log dirs
    assert broker.start() == bootstrap           # same ports, same cluster id, same records
    broker.stop()                                # and remove its data
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from confluent_kafka.admin import AdminClient

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"
# The test user of the SASL_PLAINTEXT listener (`kafka.sh start --sasl`), and the least-privilege
# SCRAM user of the SASL_SSL listener (`kafka.sh start --tls --acl`).
SASL_USERNAME = "scorer"
SASL_PASSWORD = "scorer-secret"
# The SCRAM super user of the SASL_SSL listener.
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-secret"
# kafka.sh exits with this code when Java or Maven is missing.
EXIT_PREREQUISITE_MISSING = 69
# topic_factory(partitions=1, config=None) -> name; group_factory() -> group id (see conftest.py).
TopicFactory = Callable[..., str]
GroupFactory = Callable[[], str]
INSTALL_HINT = (
    "install a Java 17+ JDK and Maven (Debian: apt-get install openjdk-17-jdk-headless maven), "
    "or point KAFKA_BOOTSTRAP_SERVERS at a running Kafka cluster"
)


class BrokerError(RuntimeError):
    """kafka.sh failed; the message carries the command and the tail of its output."""

    def __init__(self, action: str, name: str, returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-40:])
        super().__init__(f"kafka.sh {action} --name {name} exited with {returncode}:\n{tail}")
        self.action = action
        self.name = name
        self.returncode = returncode


class BrokerPrerequisiteError(BrokerError):
    """Java, javac or Maven is not installed, so no local broker can be started."""


@dataclass(frozen=True)
class SaslCluster:
    """Where and how to reach a SASL_PLAINTEXT listener."""

    bootstrap: str
    username: str
    password: str
    mechanism: str = "PLAIN"
    security_protocol: str = "SASL_PLAINTEXT"

    def client_config(self, password: str | None = None) -> dict[str, str | int | float | bool]:
        """librdkafka settings for this listener; `password` overrides the right one."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.mechanism,
            "sasl.username": self.username,
            "sasl.password": self.password if password is None else password,
        }


@dataclass(frozen=True)
class SecureCluster:
    """A SASL_SSL + SCRAM-SHA-512 listener with ACLs (`kafka.sh start --tls --acl`).

    `admin` is a super user; `scorer` holds only what `grant_scorer` gives it.
    """

    broker: LocalBroker
    bootstrap: str
    ca_file: Path
    mechanism: str = "SCRAM-SHA-512"
    security_protocol: str = "SASL_SSL"

    def client_config(
        self, username: str = ADMIN_USERNAME, password: str | None = None
    ) -> dict[str, str | int | float | bool]:
        """librdkafka settings for `username` (admin by default) with its right password."""
        known = {ADMIN_USERNAME: ADMIN_PASSWORD, SASL_USERNAME: SASL_PASSWORD}
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.mechanism,
            "sasl.username": username,
            "sasl.password": known[username] if password is None else password,
            "ssl.ca.location": str(self.ca_file),
        }

    def grant_scorer(self, input: str, output: str, dlq: str, group: str) -> None:
        """`kafka.sh grant`: the scorer's least-privilege ACLs on these topics and group."""
        self.broker.grant_scorer(input, output, dlq, group)


def missing_tools() -> list[str]:
    """The executables kafka.sh needs that are not on PATH."""
    return [tool for tool in ("java", "javac", "mvn") if shutil.which(tool) is None]


class LocalBroker:
    """One named single-node KRaft broker under `.local/kafka/data/<name>/`.

    `owner_pid` makes kafka.sh stop and remove the broker once that process is gone, so a test
    run that is killed does not leave a broker behind.
    """

    def __init__(
        self,
        name: str,
        *,
        sasl: bool = False,
        tls_acl: bool = False,
        owner_pid: int | None = None,
        start_timeout_s: int = 90,
        script: Path = KAFKA_SH,
    ) -> None:
        self.name = name
        self.sasl = sasl
        self.tls_acl = tls_acl
        self.owner_pid = owner_pid
        self.start_timeout_s = start_timeout_s
        self.script = script
        self.bootstrap: str | None = None
        self.sasl_bootstrap: str | None = None
        self.tls_bootstrap: str | None = None
        self.ca_file: Path | None = None

    def _run(self, action: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.script), action, "--name", self.name, *args]
        logger.debug("running %s", " ".join(cmd))
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else exc.stderr
            raise BrokerError(
                action, self.name, -1, f"timed out after {timeout_s}s\n{out}"
            ) from exc
        for line in proc.stderr.splitlines():
            logger.debug("kafka.sh: %s", line)
        return proc

    def start(self) -> str:
        """Start (or restart on kept data) and return the PLAINTEXT bootstrap address."""
        args = ["--timeout", str(self.start_timeout_s)]
        if self.sasl:
            args.append("--sasl")
        if self.tls_acl:
            args.append("--acl")  # implies --tls
        if self.owner_pid is not None:
            args += ["--owner-pid", str(self.owner_pid)]
        # The first start also resolves the jars through Maven: allow for a slow mirror.
        proc = self._run("start", *args, timeout_s=self.start_timeout_s + 600)
        if proc.returncode == EXIT_PREREQUISITE_MISSING:
            raise BrokerPrerequisiteError("start", self.name, proc.returncode, proc.stderr)
        if proc.returncode != 0:
            raise BrokerError("start", self.name, proc.returncode, proc.stdout + proc.stderr)
        lines = proc.stdout.strip().splitlines()
        if not lines or not lines[-1].startswith("127.0.0.1:"):
            raise BrokerError("start", self.name, 0, f"no bootstrap address in:\n{proc.stdout}")
        self.bootstrap = lines[-1]
        for line in lines[:-1]:
            key, _, value = line.partition("=")
            if key == "sasl_bootstrap":
                self.sasl_bootstrap = value
            elif key == "tls_bootstrap":
                self.tls_bootstrap = value
            elif key == "ca_file":
                self.ca_file = Path(value)
        if self.sasl and self.sasl_bootstrap is None:
            raise BrokerError("start", self.name, 0, f"no sasl_bootstrap line in:\n{proc.stdout}")
        if self.tls_acl and (self.tls_bootstrap is None or self.ca_file is None):
            raise BrokerError("start", self.name, 0, f"no tls_bootstrap/ca_file in:\n{proc.stdout}")
        logger.info("local broker %s ready bootstrap=%s", self.name, self.bootstrap)
        return self.bootstrap

    def stop(
        self,
        signal: Literal["TERM", "KILL"] = "TERM",
        *,
        keep_data: bool = False,
        grace_s: int = 30,
    ) -> None:
        """SIGTERM (SIGKILL after `grace_s`) or SIGKILL at once; remove the data unless kept."""
        args = self.stop_command(signal, keep_data=keep_data, grace_s=grace_s)[4:]
        proc = self._run("stop", *args, timeout_s=grace_s + 60)
        if proc.returncode != 0:
            raise BrokerError("stop", self.name, proc.returncode, proc.stdout + proc.stderr)

    def stop_command(
        self,
        signal: Literal["TERM", "KILL"] = "TERM",
        *,
        keep_data: bool = False,
        grace_s: int = 30,
    ) -> list[str]:
        """The kafka.sh command line of ``stop`` (another process may run it)."""
        command = [str(self.script), "stop", "--name", self.name, "--grace", str(grace_s)]
        if signal == "KILL":
            command.append("--kill")
        if keep_data:
            command.append("--keep-data")
        return command

    def restart(self, signal: Literal["TERM", "KILL"] = "TERM") -> str:
        """Stop with `signal`, keep the data and start again on the same ports."""
        self.stop(signal, keep_data=True)
        return self.start()

    def is_running(self) -> bool:
        return self._run("status", timeout_s=30).returncode == 0

    def sasl_cluster(self) -> SaslCluster:
        if self.sasl_bootstrap is None:
            raise BrokerError("status", self.name, 0, "the broker was not started with sasl=True")
        return SaslCluster(self.sasl_bootstrap, SASL_USERNAME, SASL_PASSWORD)

    def secure_cluster(self) -> SecureCluster:
        if self.tls_bootstrap is None or self.ca_file is None:
            raise BrokerError("status", self.name, 0, "not started with tls_acl=True")
        return SecureCluster(self, self.tls_bootstrap, self.ca_file)

    def grant_scorer(self, input: str, output: str, dlq: str, group: str) -> None:
        args = ["--input", input, "--output", output, "--dlq", dlq, "--group", group]
        proc = self._run("grant", *args, timeout_s=120)
        if proc.returncode != 0:
            raise BrokerError("grant", self.name, proc.returncode, proc.stdout + proc.stderr)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def unique_broker_name(purpose: str) -> str:
    """A broker name that no other test session on this machine uses."""
    return f"{purpose}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def wait_for_topic(admin: AdminClient, topic: str, partitions: int, timeout_s: float = 30) -> None:
    """Until every partition of `topic` has a leader (creation is asynchronous in Kafka)."""
    deadline = time.monotonic() + timeout_s
    state = "not in metadata"
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None:
            leaders = [p.leader for p in meta.partitions.values()]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return
            state = f"partition leaders {leaders}"
        elif meta is not None:
            state = str(meta.error)
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic} not ready after {timeout_s}s: {state}")
