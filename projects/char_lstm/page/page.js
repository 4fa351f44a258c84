import { guarded, modelInfo, showError, stream } from "/static/pages.js";

const $ = (id) => document.getElementById(id);
const SIGNATURE = "generate_step";
let vocabulary = null; // the characters the model knows (page.json), to name the ones it does not
let controller = null; // the running generation's AbortController: Stop aborts its fetch

/** The :stream request for the form: the carried state and position are left out, so they start at zeros. */
function request() {
  const topK = $("top_k").value.trim();
  return {
    signature_name: SIGNATURE,
    inputs: {
      text: $("prompt").value,
      temperature: Number($("temperature").value),
      top_k: topK === "" ? 0 : Number(topK), // 0: no top-k, as in the generate signature
      seed: Number($("seed").value),
    },
    steps: Number($("length").value),
  };
}

/** The server's message, with the characters it means when it is about characters the model never saw. */
function explained(error) {
  if (!vocabulary || !/never saw/.test(error.message)) return error;
  const unknown = [...new Set([...$("prompt").value].filter((c) => !vocabulary.includes(c)))];
  const message = error.message.replace(/[.\s]+$/, ""); // TensorFlow ends an assertion's message with ".  "
  return new Error(`${message}: ${unknown.map((c) => JSON.stringify(c)).join(", ")}`);
}

function running(yes) {
  $("generate").disabled = yes;
  $("stop").disabled = !yes;
}

async function generate() {
  const body = request();
  const written = $("written");
  $("echo").textContent = body.inputs.text;
  written.textContent = "";
  $("status").textContent = "Writing…";
  controller = new AbortController();
  running(true);
  let count = 0;
  await guarded(async () => {
    try {
      await stream(body, (event) => { written.append(event.text); count += 1; }, controller.signal);
      $("status").textContent = `Wrote ${count} characters.`;
    } catch (error) {
      if (error.name === "AbortError") {
        $("status").textContent = `Stopped after ${count} of ${body.steps} characters.`;
      } else if (count) {
        $("status").textContent = `Failed after ${count} characters.`;
      } else { // refused before the first character: nothing to show but the message
        $("echo").textContent = "";
        $("status").textContent = "Nothing written.";
      }
      throw error.name === "AbortError" ? error : explained(error);
    }
  });
  controller = null;
  running(false);
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!controller) generate();
});
$("stop").addEventListener("click", () => controller && controller.abort());

modelInfo()
  .then(({ info, signatures }) => {
    if (!signatures.includes(SIGNATURE)) {
      throw new Error(`this export has no ${SIGNATURE} signature; export the run again (python -m projects.char_lstm export RUN)`);
    }
    vocabulary = info.vocabulary || null;
    // the training text's first line: a prompt made of characters the model knows
    if (info.sample_prompt && !$("prompt").value) $("prompt").value = info.sample_prompt;
    if (vocabulary) $("known").textContent = `It knows ${vocabulary.length} characters: ${JSON.stringify(vocabulary)}`;
  })
  .catch((error) => showError(error.message));
