#!/usr/bin/env python3
"""A renderd client generated from proto/ alone, run as a test against a live server.

At start it runs grpcio-tools' protoc on proto/render/v1/render.proto and proto/google/rpc/*.proto
into a temporary folder and imports the generated modules; nothing else of renderd is used.
It needs grpcio, grpcio-tools and protobuf (tests/python/setup-venv puts them in target/pyenv).

Usage:
  client.py --addr HOST:PORT --token JWT --video-url URL --scenario PATH
            [--width N] [--height N] [--fps N] [--stream-timeout S] [--proto-dir DIR]
  client.py --self-check [--proto-dir DIR]

The first form drives the server at HOST:PORT (plaintext) with `authorization: Bearer JWT`:
  create     CreateRender (fresh uuid4 request_id, the given video URL, the scenario file's text
             as scenario_json, options left at 0 = server defaults unless --width/--height/--fps)
             returns a QUEUED job with an id that echoes the request_id
  stream     StreamStatus: the first message arrives, every state is QUEUED, RUNNING or
             SUCCEEDED, progress never decreases, the stream ends right after SUCCEEDED
             (within --stream-timeout seconds, default 600)
  get        GetRender: SUCCEEDED, output.download_url set, output.size_bytes > 0
  history    History: the first (newest) job is the one created
  quota      GetQuota: daily.used >= 1
  not-found  GetRender of a random uuid: NOT_FOUND whose grpc-status-details-bin trailer is a
             google.rpc.Status with the same code and exactly one ErrorInfo, reason
             RENDER_JOB_NOT_FOUND, domain render.v1
  no-token   GetQuota without authorization: UNAUTHENTICATED, ErrorInfo RENDER_AUTH_ERROR
  korean     the not-found call with `accept-language: ko`: its LocalizedMessage's locale
             starts with "ko" and its message is not empty
The happy-path checks stop at the first failure (each needs the one before); the error checks
always run. One line per check ("ok   NAME: ..." or "FAIL NAME: ..."), then a summary line.

--self-check needs no server: it generates and imports the stubs, checks that the descriptors
hold render.v1.RenderService with its 6 methods, round-trips a google.rpc.Status through the
trailer decoder, and then runs all the checks above against an in-process stand-in server that
follows the contract on 127.0.0.1:0 (so the client itself is tested before a renderd exists).

Exit status: 0 when every check passed, 1 when a check failed, 2 on bad usage or when the stubs
cannot be generated.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterable, NamedTuple

import grpc

DEFAULT_PROTO_DIR = Path(__file__).resolve().parent.parent.parent / "proto"
SERVICE = "RenderService"
METHODS = {
    # name: (client streaming, server streaming)
    "CreateRender": (False, False),
    "GetRender": (False, False),
    "StreamStatus": (False, True),
    "Cancel": (False, False),
    "History": (False, False),
    "GetQuota": (False, False),
}
ERROR_DOMAIN = "render.v1"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
UNARY_TIMEOUT_S = 30.0


class CheckFailed(Exception):
    """A check's expectation did not hold; the message says what was seen."""


class Stubs(NamedTuple):
    render_pb2: ModuleType
    render_pb2_grpc: ModuleType
    status_pb2: ModuleType
    error_details_pb2: ModuleType


def generate_stubs(proto_dir: Path, out_dir: Path) -> Stubs:
    """Runs protoc from grpcio-tools on proto_dir into out_dir and imports the result."""
    protos = ["render/v1/render.proto"] + sorted(
        str(p.relative_to(proto_dir)) for p in (proto_dir / "google" / "rpc").glob("*.proto")
    )
    missing = [p for p in protos if not (proto_dir / p).is_file()]
    if missing or len(protos) < 3:
        raise SystemExit(f"client: protos missing under {proto_dir}: {missing or 'google/rpc/*.proto'}")
    command = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{proto_dir}",
        f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *protos,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"client: protoc failed ({done.returncode}): {done.stderr.strip()}")
    # The generated modules import each other as render.v1.* and google.rpc.*; `google` is a
    # namespace package, so google.protobuf still comes from the installed protobuf.
    sys.path.insert(0, str(out_dir))
    importlib.invalidate_caches()
    return Stubs(
        render_pb2=importlib.import_module("render.v1.render_pb2"),
        render_pb2_grpc=importlib.import_module("render.v1.render_pb2_grpc"),
        status_pb2=importlib.import_module("google.rpc.status_pb2"),
        error_details_pb2=importlib.import_module("google.rpc.error_details_pb2"),
    )


def check_descriptors(stubs: Stubs) -> str:
    """The generated descriptors describe render.v1.RenderService with exactly its 6 methods."""
    file_descriptor = stubs.render_pb2.DESCRIPTOR
    if file_descriptor.package != "render.v1":
        raise CheckFailed(f"package is {file_descriptor.package!r}, want 'render.v1'")
    service = file_descriptor.services_by_name.get(SERVICE)
    if service is None:
        raise CheckFailed(f"no {SERVICE} in {sorted(file_descriptor.services_by_name)}")
    seen = {
        m.name: (m.client_streaming, m.server_streaming) for m in service.methods
    }
    if seen != METHODS:
        raise CheckFailed(f"{service.full_name} methods are {seen}, want {METHODS}")
    servicer = stubs.render_pb2_grpc.RenderServiceServicer
    for name in METHODS:
        if not callable(getattr(servicer, name, None)):
            raise CheckFailed(f"generated RenderServiceServicer has no {name}")
    for message in ("ErrorInfo", "LocalizedMessage", "BadRequest", "QuotaFailure", "RetryInfo"):
        if not hasattr(stubs.error_details_pb2, message):
            raise CheckFailed(f"google.rpc.{message} was not generated")
    return f"{service.full_name} has {len(seen)} methods: {', '.join(sorted(seen))}"


class RichError(NamedTuple):
    """A failed call: its code and the decoded google.rpc.Status of its trailer."""

    code: grpc.StatusCode
    message: str
    status: object  # google.rpc.Status
    error_infos: list
    localized: list


def decode_rich_error(stubs: Stubs, error: grpc.RpcError) -> RichError:
    """Decodes the grpc-status-details-bin trailer of a failed call."""
    trailers = error.trailing_metadata() or ()
    raw = [value for key, value in trailers if key == STATUS_DETAILS_KEY]
    if len(raw) != 1:
        raise CheckFailed(
            f"{error.code().name} ({error.details()!r}) has {len(raw)} {STATUS_DETAILS_KEY} "
            f"trailers, want 1; trailer keys: {[key for key, _ in trailers]}"
        )
    return decode_status_bytes(stubs, error.code(), error.details() or "", raw[0])


def decode_status_bytes(stubs: Stubs, code: grpc.StatusCode, message: str, raw: bytes) -> RichError:
    status = stubs.status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception as parse_error:  # protobuf raises DecodeError, a plain Exception subclass
        raise CheckFailed(f"{STATUS_DETAILS_KEY} is not a google.rpc.Status: {parse_error}") from None
    if status.code != code.value[0]:
        raise CheckFailed(f"details Status.code is {status.code}, the call's code is {code.name}")
    error_infos, localized = [], []
    for detail in status.details:
        for kind, bucket in (("ErrorInfo", error_infos), ("LocalizedMessage", localized)):
            message_class = getattr(stubs.error_details_pb2, kind)
            if detail.Is(message_class.DESCRIPTOR):
                unpacked = message_class()
                detail.Unpack(unpacked)
                bucket.append(unpacked)
    return RichError(code, message, status, error_infos, localized)


def expect_error(
    stubs: Stubs, call: Callable[[], object], code: grpc.StatusCode, reason: str
) -> RichError:
    """Runs a call that must fail with `code` and one ErrorInfo(reason, domain render.v1)."""
    try:
        answer = call()
    except grpc.RpcError as error:
        if error.code() != code:
            raise CheckFailed(f"got {error.code().name} ({error.details()!r}), want {code.name}") from None
        rich = decode_rich_error(stubs, error)
    else:
        raise CheckFailed(f"the call succeeded ({type(answer).__name__}), want {code.name}")
    if len(rich.error_infos) != 1:
        raise CheckFailed(f"{len(rich.error_infos)} ErrorInfo details, want exactly 1")
    info = rich.error_infos[0]
    if info.reason != reason or info.domain != ERROR_DOMAIN:
        raise CheckFailed(
            f"ErrorInfo is reason={info.reason!r} domain={info.domain!r}, "
            f"want reason={reason!r} domain={ERROR_DOMAIN!r}"
        )
    return rich


class Client:
    """The checks, in order, against one server."""

    def __init__(self, stubs: Stubs, channel: grpc.Channel, token: str):
        self.stubs = stubs
        self.pb = stubs.render_pb2
        self.stub = stubs.render_pb2_grpc.RenderServiceStub(channel)
        self.token = token
        self.job_id = ""

    def auth(self, *extra: tuple[str, str]) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}"), *extra]

    def state_name(self, state: int) -> str:
        return self.pb.JobState.Name(state) if state in self.pb.JobState.values() else str(state)

    def create(self, video_url: str, scenario_json: str, width: int, height: int, fps: int) -> str:
        request_id = str(uuid.uuid4())
        job = self.stub.CreateRender(
            self.pb.CreateRenderRequest(
                request_id=request_id,
                video_url=video_url,
                scenario_json=scenario_json,
                options=self.pb.RenderOptions(width=width, height=height, fps=fps),
            ),
            metadata=self.auth(),
            timeout=UNARY_TIMEOUT_S,
        )
        if not job.job_id:
            raise CheckFailed("the created job has no job_id")
        if job.request_id != request_id:
            raise CheckFailed(f"request_id {job.request_id!r} does not echo {request_id!r}")
        if job.state != self.pb.JOB_STATE_QUEUED:
            raise CheckFailed(f"new job is {self.state_name(job.state)}, want JOB_STATE_QUEUED")
        self.job_id = job.job_id
        return f"job {job.job_id} QUEUED (request_id {request_id})"

    def stream(self, timeout_s: float) -> str:
        allowed = {self.pb.JOB_STATE_QUEUED, self.pb.JOB_STATE_RUNNING, self.pb.JOB_STATE_SUCCEEDED}
        terminal = {self.pb.JOB_STATE_SUCCEEDED, self.pb.JOB_STATE_FAILED, self.pb.JOB_STATE_CANCELLED}
        messages, states, last_progress, ended = 0, [], -1.0, None
        responses = self.stub.StreamStatus(
            self.pb.StreamStatusRequest(job_id=self.job_id), metadata=self.auth(), timeout=timeout_s
        )
        try:
            for status in responses:
                messages += 1
                if ended is not None:
                    raise CheckFailed(f"message {messages} arrived after the terminal {ended}")
                if status.job_id != self.job_id:
                    raise CheckFailed(f"message {messages} is for job {status.job_id!r}")
                name = self.state_name(status.state)
                if status.state not in allowed:
                    why = f": {status.failure.message}" if status.HasField("failure") else ""
                    raise CheckFailed(f"message {messages} has state {name}{why}")
                if not states or states[-1] != name:
                    states.append(name)
                if status.progress < last_progress:
                    raise CheckFailed(
                        f"progress went back from {last_progress} to {status.progress} "
                        f"at message {messages}"
                    )
                last_progress = status.progress
                if status.state in terminal:
                    ended = name
        except grpc.RpcError as error:
            raise CheckFailed(
                f"stream failed after {messages} messages: {error.code().name} {error.details()!r}"
            ) from None
        if messages == 0:
            raise CheckFailed("the stream closed without sending the current status")
        if ended is None:
            raise CheckFailed(f"the stream closed after {messages} messages before a terminal state")
        return f"{messages} messages, states {' -> '.join(states)}, final progress {last_progress:g}"

    def get(self) -> str:
        job = self.stub.GetRender(
            self.pb.GetRenderRequest(job_id=self.job_id), metadata=self.auth(), timeout=UNARY_TIMEOUT_S
        )
        if job.state != self.pb.JOB_STATE_SUCCEEDED:
            raise CheckFailed(f"job is {self.state_name(job.state)}, want JOB_STATE_SUCCEEDED")
        if not job.output.download_url:
            raise CheckFailed("output.download_url is empty")
        if job.output.size_bytes <= 0:
            raise CheckFailed(f"output.size_bytes is {job.output.size_bytes}")
        return f"SUCCEEDED, {job.output.size_bytes} bytes at {job.output.download_url}"

    def history(self) -> str:
        page = self.stub.History(
            self.pb.HistoryRequest(page_size=5), metadata=self.auth(), timeout=UNARY_TIMEOUT_S
        )
        if not page.jobs:
            raise CheckFailed("History returned no jobs")
        if page.jobs[0].job_id != self.job_id:
            raise CheckFailed(f"first job is {page.jobs[0].job_id!r}, want {self.job_id!r}")
        return f"{len(page.jobs)} jobs on the first page, newest is {self.job_id}"

    def quota(self) -> str:
        usage = self.stub.GetQuota(self.pb.GetQuotaRequest(), metadata=self.auth(), timeout=UNARY_TIMEOUT_S)
        if not usage.HasField("daily") or usage.daily.used < 1:
            raise CheckFailed(f"daily.used is {usage.daily.used}, want >= 1")
        return f"daily {usage.daily.used}/{usage.daily.limit}, monthly {usage.monthly.used}/{usage.monthly.limit}"

    def not_found(self) -> str:
        missing = str(uuid.uuid4())
        rich = expect_error(
            self.stubs,
            lambda: self.stub.GetRender(
                self.pb.GetRenderRequest(job_id=missing), metadata=self.auth(), timeout=UNARY_TIMEOUT_S
            ),
            grpc.StatusCode.NOT_FOUND,
            "RENDER_JOB_NOT_FOUND",
        )
        return f"NOT_FOUND, ErrorInfo {rich.error_infos[0].reason} ({rich.error_infos[0].domain})"

    def no_token(self) -> str:
        rich = expect_error(
            self.stubs,
            lambda: self.stub.GetQuota(self.pb.GetQuotaRequest(), timeout=UNARY_TIMEOUT_S),
            grpc.StatusCode.UNAUTHENTICATED,
            "RENDER_AUTH_ERROR",
        )
        return f"UNAUTHENTICATED, ErrorInfo {rich.error_infos[0].reason}"

    def korean(self) -> str:
        missing = str(uuid.uuid4())
        rich = expect_error(
            self.stubs,
            lambda: self.stub.GetRender(
                self.pb.GetRenderRequest(job_id=missing),
                metadata=self.auth(("accept-language", "ko")),
                timeout=UNARY_TIMEOUT_S,
            ),
            grpc.StatusCode.NOT_FOUND,
            "RENDER_JOB_NOT_FOUND",
        )
        if len(rich.localized) != 1:
            raise CheckFailed(f"{len(rich.localized)} LocalizedMessage details, want 1")
        localized = rich.localized[0]
        if not localized.locale.lower().startswith("ko") or not localized.message:
            raise CheckFailed(f"LocalizedMessage is locale={localized.locale!r} message={localized.message!r}")
        return f"LocalizedMessage {localized.locale}: {localized.message}"


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, check: Callable[[], str]) -> bool:
        try:
            detail = check()
        except CheckFailed as failure:
            self.fail(name, str(failure))
            return False
        except grpc.RpcError as error:
            self.fail(name, f"unexpected {error.code().name}: {error.details()!r}")
            return False
        print(f"ok   {name}: {detail}", flush=True)
        self.passed += 1
        return True

    def fail(self, name: str, why: str) -> None:
        print(f"FAIL {name}: {why}", flush=True)
        self.failed += 1


def run_checks(
    report: Report, stubs: Stubs, addr: str, token: str, video_url: str, scenario_json: str,
    width: int, height: int, fps: int, stream_timeout_s: float,
) -> None:
    with grpc.insecure_channel(addr) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=UNARY_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            report.fail("connect", f"no connection to {addr} within {UNARY_TIMEOUT_S:g} s")
            return
        client = Client(stubs, channel, token)
        happy: Iterable[tuple[str, Callable[[], str]]] = (
            ("create", lambda: client.create(video_url, scenario_json, width, height, fps)),
            ("stream", lambda: client.stream(stream_timeout_s)),
            ("get", client.get),
            ("history", client.history),
            ("quota", client.quota),
        )
        for name, check in happy:
            if not report.run(name, check):
                break
        report.run("not-found", client.not_found)
        report.run("no-token", client.no_token)
        report.run("korean", client.korean)


def self_check(report: Report, stubs: Stubs) -> None:
    """Descriptor and decoder checks, then every client check against the stand-in server."""
    if not report.run("descriptors", lambda: check_descriptors(stubs)):
        return
    report.run("decode", lambda: round_trip_status(stubs))
    from standin_server import serve  # beside this file; only the self-check needs it

    server, port, token = serve(stubs)
    try:
        run_checks(
            report, stubs, f"127.0.0.1:{port}", token, "file:///media/clip.mp4",
            '{"version":"1.3","cues":[]}', 0, 0, 0, 30.0,
        )
    finally:
        server.stop(grace=None)


def round_trip_status(stubs: Stubs) -> str:
    """Encodes a Status as a server would and decodes it with the trailer decoder."""
    details = stubs.error_details_pb2
    status = stubs.status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="no such job")
    status.details.add().Pack(details.ErrorInfo(reason="RENDER_JOB_NOT_FOUND", domain=ERROR_DOMAIN))
    status.details.add().Pack(details.LocalizedMessage(locale="ko-KR", message="작업을 찾을 수 없습니다"))
    rich = decode_status_bytes(stubs, grpc.StatusCode.NOT_FOUND, "no such job", status.SerializeToString())
    if [i.reason for i in rich.error_infos] != ["RENDER_JOB_NOT_FOUND"] or [
        m.locale for m in rich.localized
    ] != ["ko-KR"]:
        raise CheckFailed(f"decoded {rich.error_infos} / {rich.localized}")
    try:
        decode_status_bytes(stubs, grpc.StatusCode.INTERNAL, "", status.SerializeToString())
    except CheckFailed:
        pass
    else:
        raise CheckFailed("a Status whose code differs from the call's was accepted")
    return "google.rpc.Status with ErrorInfo and LocalizedMessage decodes"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-check", action="store_true", help="no server: generate, import, check")
    parser.add_argument("--addr", help="HOST:PORT of a plaintext renderd")
    parser.add_argument("--token", help="JWT for the authorization header")
    parser.add_argument("--video-url", help="input video URL for CreateRender")
    parser.add_argument("--scenario", type=Path, help="MotionText scenario JSON file")
    parser.add_argument("--width", type=int, default=0, help="RenderOptions.width (0 = default)")
    parser.add_argument("--height", type=int, default=0, help="RenderOptions.height (0 = default)")
    parser.add_argument("--fps", type=int, default=0, help="RenderOptions.fps (0 = default)")
    parser.add_argument("--stream-timeout", type=float, default=600.0, help="seconds for StreamStatus")
    parser.add_argument("--proto-dir", type=Path, default=DEFAULT_PROTO_DIR, help="the repo's proto/")
    args = parser.parse_args(argv)
    if not args.self_check:
        missing = [f"--{n.replace('_', '-')}" for n in ("addr", "token", "video_url", "scenario") if not getattr(args, n)]
        if missing:
            parser.error(f"missing {', '.join(missing)} (or use --self-check)")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    scenario_json = ""
    if not args.self_check:
        try:
            scenario_json = args.scenario.read_text(encoding="utf-8")
        except OSError as error:
            print(f"client: cannot read the scenario {args.scenario}: {error}", file=sys.stderr)
            return 2
    report = Report()
    with tempfile.TemporaryDirectory(prefix="renderd-pystubs-") as out_dir:
        try:
            stubs = generate_stubs(args.proto_dir.resolve(), Path(out_dir))
        except SystemExit as error:
            print(error, file=sys.stderr)
            return 2
        report.run("stubs", lambda: f"generated from {args.proto_dir} and imported")
        if args.self_check:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            self_check(report, stubs)
        else:
            run_checks(
                report, stubs, args.addr, args.token, args.video_url, scenario_json,
                args.width, args.height, args.fps, args.stream_timeout,
            )
    total = report.passed + report.failed
    if report.failed:
        print(f"python client: {report.failed} of {total} checks FAILED", flush=True)
        return 1
    print(f"python client: all {total} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
