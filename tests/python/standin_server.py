"""A small in-process RenderService that follows proto/render/v1/render.proto, for client.py's
--self-check only: it lets the client's checks run (and be seen to pass and fail correctly)
without a renderd. It is not renderd and proves nothing about renderd.

Jobs advance on a thread of their own (QUEUED -> RUNNING with rising progress -> SUCCEEDED);
errors carry a google.rpc.Status in the grpc-status-details-bin trailer with one ErrorInfo and
a LocalizedMessage chosen by accept-language, as the contract asks of the real server.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent import futures

import grpc

TOKEN = "standin-token"
OWNER = "standin-user"
STEP_S = 0.02


class _Jobs:
    def __init__(self, pb) -> None:
        self.pb = pb
        self.changed = threading.Condition()
        self.jobs: dict[str, object] = {}
        self.order: list[str] = []
        self.by_request: dict[str, str] = {}

    def create(self, request):
        with self.changed:
            if request.request_id and request.request_id in self.by_request:
                return self.snapshot(self.by_request[request.request_id])
            job = self.pb.RenderJob(
                job_id=str(uuid.uuid4()), owner=OWNER, state=self.pb.JOB_STATE_QUEUED,
                request_id=request.request_id, video_url=request.video_url,
                video_name=request.video_name or request.video_url.rsplit("/", 1)[-1],
                frames_total=4,
            )
            job.create_time.GetCurrentTime()
            self.jobs[job.job_id] = job
            self.order.append(job.job_id)
            if request.request_id:
                self.by_request[request.request_id] = job.job_id
            threading.Thread(target=self._run, args=(job.job_id,), daemon=True).start()
            return self.snapshot(job.job_id)

    def snapshot(self, job_id: str):
        copy = self.pb.RenderJob()
        copy.CopyFrom(self.jobs[job_id])
        return copy

    def _update(self, job_id: str, **fields) -> None:
        with self.changed:
            job = self.jobs[job_id]
            for name, value in fields.items():
                setattr(job, name, value)
            job.update_time.GetCurrentTime()
            self.changed.notify_all()

    def _run(self, job_id: str) -> None:
        pb = self.pb
        time.sleep(STEP_S)
        self._update(job_id, state=pb.JOB_STATE_RUNNING, stage=pb.STAGE_RENDERING)
        for frame in range(1, 5):
            time.sleep(STEP_S)
            self._update(job_id, frames_done=frame, progress=frame * 25.0)
        with self.changed:
            job = self.jobs[job_id]
            job.output.download_url = f"http://127.0.0.1/outputs/{job_id}.mp4?sig=standin"
            job.output.size_bytes = 1024
            job.output.duration_seconds = 1.0
            job.finish_time.GetCurrentTime()
        self._update(job_id, state=pb.JOB_STATE_SUCCEEDED, stage=pb.STAGE_FINALIZING)


def serve(stubs):
    """Starts the stand-in on 127.0.0.1:0; returns (server, port, the token it accepts)."""
    pb = stubs.render_pb2
    details = stubs.error_details_pb2
    jobs = _Jobs(pb)
    terminal = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}

    def abort(context, code: grpc.StatusCode, reason: str, english: str, korean: str):
        language = dict(context.invocation_metadata()).get("accept-language", "")
        status = stubs.status_pb2.Status(code=code.value[0], message=english)
        status.details.add().Pack(details.ErrorInfo(reason=reason, domain="render.v1"))
        if language.lower().startswith("ko"):
            status.details.add().Pack(details.LocalizedMessage(locale="ko-KR", message=korean))
        else:
            status.details.add().Pack(details.LocalizedMessage(locale="en-US", message=english))
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(code, english)

    def authorize(context) -> None:
        if dict(context.invocation_metadata()).get("authorization") != f"Bearer {TOKEN}":
            abort(context, grpc.StatusCode.UNAUTHENTICATED, "RENDER_AUTH_ERROR",
                  "missing or invalid bearer token", "인증 토큰이 없거나 올바르지 않습니다")

    def find(job_id: str, context):
        with jobs.changed:
            if job_id in jobs.jobs:
                return jobs.snapshot(job_id)
        abort(context, grpc.StatusCode.NOT_FOUND, "RENDER_JOB_NOT_FOUND",
              f"render job {job_id} not found", f"렌더 작업 {job_id}을(를) 찾을 수 없습니다")
        raise AssertionError("abort returns only by raising")

    class Service(stubs.render_pb2_grpc.RenderServiceServicer):
        def CreateRender(self, request, context):
            authorize(context)
            return jobs.create(request)

        def GetRender(self, request, context):
            authorize(context)
            return find(request.job_id, context)

        def StreamStatus(self, request, context):
            authorize(context)
            job = find(request.job_id, context)
            while True:
                shared = pb.RenderJob()
                shared.CopyFrom(job)
                for only_in_job in ("request_id", "video_url", "video_name", "options"):
                    shared.ClearField(only_in_job)
                status = pb.RenderStatus()
                status.ParseFromString(shared.SerializeToString())  # fields 1-16 are shared
                yield status
                if job.state in terminal:
                    return
                with jobs.changed:
                    jobs.changed.wait_for(
                        lambda: jobs.jobs[request.job_id].update_time != job.update_time, timeout=5
                    )
                    job = jobs.snapshot(request.job_id)

        def History(self, request, context):
            authorize(context)
            with jobs.changed:
                newest_first = [jobs.snapshot(j) for j in reversed(jobs.order)]
            return pb.HistoryResponse(jobs=newest_first[: request.page_size or 10])

        def GetQuota(self, request, context):
            authorize(context)
            with jobs.changed:
                used = len(jobs.order)
            return pb.QuotaUsage(
                user_id=OWNER, plan="standin",
                daily=pb.QuotaCounter(used=used, limit=10),
                monthly=pb.QuotaCounter(used=used, limit=100),
                concurrent=pb.QuotaCounter(used=0, limit=2),
            )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    stubs.render_pb2_grpc.add_RenderServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port, TOKEN
