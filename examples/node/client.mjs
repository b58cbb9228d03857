// A switchyard gRPC client in Node.js: the contract is loaded from proto/ at run time, as a
// client in any language starts (generate code from the same files, or load them).
//
//   node client.mjs HOST:PORT [--model NAME] [--engine vllm|llamacpp] [--prompt TEXT]
//
// Against the router (or one engine service) it reads the status, streams one generation,
// then starts another and cancels it after its first piece. It prints what it saw as one
// JSON object on the last line, for people and for tests/e2e/test_node_client.py.

import path from "node:path";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const PROTO_ROOT = path.resolve(here, "../../proto");

function loadContract() {
  const definition = protoLoader.loadSync(
    ["switchyard/v1/inference.proto", "switchyard/v1/control.proto"],
    // Field names as in the .proto files; enums as their names; 64-bit numbers as strings.
    { includeDirs: [PROTO_ROOT], keepCase: true, enums: String, longs: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(definition).switchyard.v1;
}

function parseArgs(argv) {
  const options = { address: argv[0], model: "", engine: "ENGINE_UNSPECIFIED", prompt: "こんにちは" };
  for (let i = 1; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === "--model") options.model = value;
    else if (flag === "--engine") options.engine = `ENGINE_${value.toUpperCase()}`;
    else if (flag === "--prompt") options.prompt = value;
    else throw new Error(`unknown option ${flag}`);
  }
  if (!options.address) throw new Error("usage: node client.mjs HOST:PORT [--model NAME] [--engine E] [--prompt TEXT]");
  return options;
}

function getStatus(control) {
  return new Promise((resolve, reject) => {
    control.GetStatus({}, { deadline: Date.now() + 10_000 }, (error, answer) => (error ? reject(error) : resolve(answer)));
  });
}

function request(options, maxTokens) {
  return {
    model: options.model,
    engine: options.engine,
    prompt: options.prompt,
    sampling: { temperature: 0 },
    stopping: { max_tokens: maxTokens, ignore_eos: true },
  };
}

// The whole stream: its text and the Finished message.
function generate(inference, options) {
  return new Promise((resolve, reject) => {
    let text = "";
    let finished = null;
    const call = inference.Generate(request(options, 16), { deadline: Date.now() + 120_000 });
    call.on("data", (response) => {
      if (response.delta) text += response.delta.text;
      if (response.finished) finished = response.finished;
    });
    call.on("error", reject);
    call.on("end", () => resolve({ text, finished }));
  });
}

// A long generation cancelled after its first piece: the call ends with CANCELLED.
function generateThenCancel(inference, options) {
  return new Promise((resolve) => {
    let pieces = 0;
    const call = inference.Generate(request(options, 2000), { deadline: Date.now() + 120_000 });
    call.on("data", () => {
      pieces += 1;
      if (pieces === 1) call.cancel();
    });
    call.on("error", (error) => resolve({ pieces, code: grpc.status[error.code] }));
    call.on("end", () => resolve({ pieces, code: "OK" }));
  });
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const contract = loadContract();
  const credentials = grpc.credentials.createInsecure();
  const inference = new contract.Inference(options.address, credentials);
  const control = new contract.Control(options.address, credentials);

  const status = await getStatus(control);
  const models = status.statuses.flatMap((engine) => engine.models.map((m) => `${engine.engine}:${m.name}:${m.state}`));
  console.log(`status: ${models.join(", ") || "no models"}`);

  const { text, finished } = await generate(inference, options);
  console.log(`generated ${finished.usage.completion_tokens} tokens on ${finished.engine} (${finished.model}): ${text}`);

  const cancelled = await generateThenCancel(inference, options);
  console.log(`cancelled after ${cancelled.pieces} piece(s): ${cancelled.code}`);

  inference.close();
  control.close();
  console.log(
    JSON.stringify({
      models,
      text,
      completion_tokens: finished.usage.completion_tokens,
      finish_reason: finished.reason,
      engine: finished.engine,
      model: finished.model,
      cancel_code: cancelled.code,
    }),
  );
}

main().catch((error) => {
  console.error(`error: ${error.message}`);
  process.exit(1);
});
