#!/usr/bin/env node
// A renderd client loaded from proto/ alone (@grpc/proto-loader + @grpc/grpc-js), run as a test
// against a live server by tests/clients.rs. Nothing else of renderd is used.
//
// Usage:
//   node client.js --addr HOST:PORT --token JWT --video-url URL --scenario PATH
//                  [--width N] [--height N] [--stream-timeout S] [--proto-dir DIR]
//
// Checks, one line each ("ok   NAME: ..." or "FAIL NAME: ..."), then a summary line:
//   create     CreateRender returns a QUEUED job that echoes the request_id
//   stream     StreamStatus: states QUEUED/RUNNING/SUCCEEDED only, progress never decreases,
//              the stream ends right after SUCCEEDED (within --stream-timeout seconds)
//   history    History: the newest job is the one created, SUCCEEDED, with a download URL
//   not-found  GetRender of a random id: NOT_FOUND whose grpc-status-details-bin trailer is a
//              google.rpc.Status with the same code and one ErrorInfo, reason
//              RENDER_JOB_NOT_FOUND, domain render.v1
//   no-token   GetQuota without authorization: UNAUTHENTICATED, ErrorInfo RENDER_AUTH_ERROR
// The happy-path checks stop at the first failure (each needs the one before); the error checks
// always run. Exit status: 0 when every check passed, 1 when one failed, 2 on bad usage.
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const protobuf = require("protobufjs");

const ERROR_DOMAIN = "render.v1";
const STATUS_DETAILS_KEY = "grpc-status-details-bin";
const UNARY_DEADLINE_MS = 30_000;
const ALLOWED_STREAM_STATES = ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"];

class CheckFailed extends Error {}

function parseArgs(argv) {
  const args = {
    protoDir: path.resolve(__dirname, "..", "..", "proto"),
    width: 0,
    height: 0,
    streamTimeout: 600,
  };
  const names = {
    "--addr": "addr",
    "--token": "token",
    "--video-url": "videoUrl",
    "--scenario": "scenario",
    "--width": "width",
    "--height": "height",
    "--stream-timeout": "streamTimeout",
    "--proto-dir": "protoDir",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (key === undefined || i + 1 >= argv.length) {
      usage(`unknown or incomplete argument ${argv[i]}`);
    }
    args[key] = argv[i + 1];
  }
  for (const key of ["width", "height", "streamTimeout"]) {
    const value = Number(args[key]);
    if (!Number.isInteger(value) || value < 0) {
      usage(`${key} must be a whole number, got ${args[key]}`);
    }
    args[key] = value;
  }
  for (const key of ["addr", "token", "videoUrl", "scenario"]) {
    if (!args[key]) {
      usage(`missing --${key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`);
    }
  }
  return args;
}

function usage(problem) {
  process.stderr.write(`client.js: ${problem}\n`);
  process.exit(2);
}

/** The RenderService client constructor and the google.rpc types, from protoDir alone. */
function loadProtos(protoDir) {
  const definition = protoLoader.loadSync("render/v1/render.proto", {
    includeDirs: [protoDir],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition);
  const RenderService = loaded.render?.v1?.RenderService;
  if (typeof RenderService !== "function") {
    throw new Error(`no render.v1.RenderService in ${protoDir}`);
  }
  const methods = Object.keys(RenderService.service).sort();
  const want = ["Cancel", "CreateRender", "GetQuota", "GetRender", "History", "StreamStatus"];
  if (methods.join() !== want.join()) {
    throw new Error(`RenderService methods are ${methods}, want ${want}`);
  }
  // google/protobuf/*.proto come bundled with protobufjs; google/rpc/*.proto from protoDir.
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    target.startsWith("google/protobuf/") ? target : path.join(protoDir, target);
  root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"]);
  return {
    RenderService,
    Status: root.lookupType("google.rpc.Status"),
    root,
  };
}

/** Decodes the google.rpc.Status of a failed call's grpc-status-details-bin trailer. */
function decodeRichError(protos, error) {
  const raw = error.metadata ? error.metadata.get(STATUS_DETAILS_KEY) : [];
  if (raw.length !== 1) {
    throw new CheckFailed(
      `${grpc.status[error.code]} (${error.details}) has ${raw.length} ${STATUS_DETAILS_KEY} trailers, want 1`,
    );
  }
  const status = protos.Status.decode(raw[0]);
  const errorInfos = [];
  for (const any of status.details) {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    const type = protos.root.lookupType(typeName);
    const detail = type.decode(any.value);
    if (typeName === "google.rpc.ErrorInfo") {
      errorInfos.push(detail);
    }
  }
  return { code: status.code, message: status.message, errorInfos };
}

function unary(client, method, request, metadata) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + UNARY_DEADLINE_MS;
    client[method](request, metadata, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

function bearer(token) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

async function checkCreate(client, args) {
  const requestId = crypto.randomUUID();
  const job = await unary(
    client,
    "CreateRender",
    {
      requestId,
      videoUrl: args.videoUrl,
      scenarioJson: fs.readFileSync(args.scenario, "utf8"),
      options: { width: args.width, height: args.height },
    },
    bearer(args.token),
  );
  if (job.state !== "JOB_STATE_QUEUED") {
    throw new CheckFailed(`state is ${job.state}, want JOB_STATE_QUEUED`);
  }
  if (!job.jobId || job.requestId !== requestId) {
    throw new CheckFailed(`job ${job.jobId} echoes request id ${job.requestId}, want ${requestId}`);
  }
  return { job, detail: `job ${job.jobId} QUEUED` };
}

function checkStream(client, args, jobId) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + args.streamTimeout * 1000;
    const call = client.StreamStatus({ jobId }, bearer(args.token), { deadline });
    const seen = [];
    let lastProgress = -1;
    let failure = null;
    const fail = (message) => {
      if (failure === null) {
        failure = new CheckFailed(message);
        call.cancel();
      }
    };
    call.on("data", (status) => {
      if (failure !== null) return;
      if (seen.length > 0 && seen[seen.length - 1] === "JOB_STATE_SUCCEEDED") {
        fail("a message arrived after SUCCEEDED");
        return;
      }
      if (!ALLOWED_STREAM_STATES.includes(status.state)) {
        fail(`state ${status.state} (${JSON.stringify(status.failure)})`);
        return;
      }
      if (status.progress < lastProgress) {
        fail(`progress went from ${lastProgress} to ${status.progress}`);
        return;
      }
      lastProgress = status.progress;
      if (seen[seen.length - 1] !== status.state) seen.push(status.state);
    });
    call.on("error", (error) => reject(failure ?? error));
    call.on("end", () => {
      if (failure !== null) return reject(failure);
      if (seen[seen.length - 1] !== "JOB_STATE_SUCCEEDED") {
        return reject(new CheckFailed(`stream ended after ${seen.join(" → ")}`));
      }
      resolve({ detail: `${seen.join(" → ")}, progress ${lastProgress}` });
    });
  });
}

async function checkHistory(client, args, jobId) {
  const history = await unary(client, "History", { pageSize: 5 }, bearer(args.token));
  const newest = history.jobs[0];
  if (newest === undefined || newest.jobId !== jobId) {
    throw new CheckFailed(`newest job is ${newest?.jobId}, want ${jobId}`);
  }
  if (newest.state !== "JOB_STATE_SUCCEEDED" || !newest.output?.downloadUrl) {
    throw new CheckFailed(`job is ${newest.state} with output ${JSON.stringify(newest.output)}`);
  }
  if (!(newest.output.sizeBytes > 0)) {
    throw new CheckFailed(`output size is ${newest.output.sizeBytes}`);
  }
  return { detail: `${history.jobs.length} job(s), newest ${jobId} SUCCEEDED, ${newest.output.sizeBytes} bytes` };
}

async function expectError(protos, call, wantCode, wantReason) {
  try {
    await call();
  } catch (error) {
    if (error.code !== wantCode) {
      throw new CheckFailed(`code ${grpc.status[error.code]} (${error.details}), want ${grpc.status[wantCode]}`);
    }
    const rich = decodeRichError(protos, error);
    if (rich.code !== wantCode) {
      throw new CheckFailed(`google.rpc.Status code ${rich.code}, want ${wantCode}`);
    }
    if (rich.errorInfos.length !== 1) {
      throw new CheckFailed(`${rich.errorInfos.length} ErrorInfo details, want 1`);
    }
    const [info] = rich.errorInfos;
    if (info.reason !== wantReason || info.domain !== ERROR_DOMAIN) {
      throw new CheckFailed(`ErrorInfo ${info.domain}/${info.reason}, want ${ERROR_DOMAIN}/${wantReason}`);
    }
    return { detail: `${grpc.status[error.code]}, ErrorInfo.reason ${info.reason}` };
  }
  throw new CheckFailed(`the call succeeded, want ${grpc.status[wantCode]}`);
}

async function run(name, check, results) {
  try {
    const outcome = await check();
    console.log(`ok   ${name}: ${outcome.detail}`);
    results.passed += 1;
    return outcome;
  } catch (error) {
    const text = error instanceof CheckFailed ? error.message : `${error.code !== undefined ? grpc.status[error.code] + ": " : ""}${error.details ?? error.message}`;
    console.log(`FAIL ${name}: ${text}`);
    results.failed += 1;
    return null;
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let protos;
  try {
    protos = loadProtos(args.protoDir);
  } catch (error) {
    process.stderr.write(`client.js: cannot load the protos: ${error.message}\n`);
    process.exit(2);
  }
  const client = new protos.RenderService(args.addr, grpc.credentials.createInsecure());
  const results = { passed: 0, failed: 0 };

  const created = await run("create", () => checkCreate(client, args), results);
  if (created !== null) {
    const jobId = created.job.jobId;
    const streamed = await run("stream", () => checkStream(client, args, jobId), results);
    if (streamed !== null) {
      await run("history", () => checkHistory(client, args, jobId), results);
    }
  }
  await run(
    "not-found",
    () =>
      expectError(
        protos,
        () => unary(client, "GetRender", { jobId: crypto.randomUUID() }, bearer(args.token)),
        grpc.status.NOT_FOUND,
        "RENDER_JOB_NOT_FOUND",
      ),
    results,
  );
  await run(
    "no-token",
    () =>
      expectError(
        protos,
        () => unary(client, "GetQuota", {}, new grpc.Metadata()),
        grpc.status.UNAUTHENTICATED,
        "RENDER_AUTH_ERROR",
      ),
    results,
  );
  client.close();
  console.log(`${results.passed} passed, ${results.failed} failed`);
  process.exit(results.failed === 0 ? 0 : 1);
}

main();
