// What every project page shares: calling the REST API, showing its errors, reading files, drawing bars.
// Plain ES module, no dependency: the pages work offline. Every exchange with the API is kept in
// window.exchanges (request and reply), so a test can send the same request itself and compare.

window.exchanges = [];

/** The model this page is for: /pages/<name>/ */
export function modelName() {
  return decodeURIComponent(location.pathname.split("/")[2]);
}

/** POST JSON to the API; the reply's JSON, or an Error carrying the server's own message. */
export async function api(path, body, options = {}) {
  const reply = await replyOf(await post(path, body, options.signal));
  window.exchanges.push({ path, request: body, reply });
  return reply;
}

/** The fetch of a JSON POST; an Error that says so when the server cannot be reached. */
async function post(path, body, signal) {
  try {
    return await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Error(`the server did not answer (${error.message}); is it still running?`);
  }
}

async function replyOf(response) {
  const text = await response.text();
  let reply;
  try {
    reply = JSON.parse(text);
  } catch {
    throw new Error(`the server answered ${response.status} with something that is not JSON`);
  }
  if (!response.ok) throw new Error(reply.error || `the server answered ${response.status}`);
  return reply;
}

/** :predict on this page's model (columnar or row body, as TF Serving takes it). */
export function predict(body) {
  return api(`/v1/models/${modelName()}:predict`, body);
}

/** The model's entry in /pages/models.json: version, measured metrics, what its page needs (info). */
export async function modelInfo() {
  const response = await fetch("/pages/models.json");
  const models = await response.json();
  const entry = models.find((m) => m.name === modelName());
  if (!entry) throw new Error(`the server does not serve ${modelName()}`);
  const heading = document.querySelector("[data-version]");
  if (heading) heading.textContent = `version ${entry.version}`;
  return entry;
}

/**
 * :stream on this page's model: calls onEvent(outputs) for each step as it arrives. Resolves when the
 * stream ends; rejects with the server's message on an error. Abort `signal` to stop it.
 */
export async function stream(body, onEvent, signal) {
  const path = `/v1/models/${modelName()}:stream`;
  const response = await post(path, body, signal);
  if (!response.ok) await replyOf(response); // throws the server's message
  const exchange = { path, request: body, events: [] };
  window.exchanges.push(exchange);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return exchange;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const kind = (block.match(/^event: (.*)$/m) || [])[1] || "message";
      const data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "{}");
      if (kind === "error") throw new Error(data.error);
      if (kind === "end") return exchange;
      exchange.events.push(data);
      onEvent(data);
    }
  }
}

/** Shows the message in the page's #error box (role="alert": screen readers say it); "" hides it. */
export function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

/** Runs `work`, showing its error (never throwing); the busy element says the request is on its way. */
export async function guarded(work) {
  const busy = document.getElementById("busy");
  if (busy) busy.hidden = false;
  try {
    showError("");
    return await work();
  } catch (error) {
    if (error.name !== "AbortError") showError(error.message);
  } finally {
    if (busy) busy.hidden = true;
  }
}

/** A file chosen with `input` or dropped on `zone` (which is also focusable and opens the chooser). */
export function onFile(zone, input, handle) {
  input.addEventListener("change", () => input.files[0] && handle(input.files[0]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files[0]) handle(event.dataTransfer.files[0]);
  });
}

/** A file's bytes as base64, the way TF Serving takes binary inputs: {"b64": ...}. */
export async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Horizontal bars, one per label, each with its value as text (readable without the bars). */
export function bars(container, labels, values, highlight = -1) {
  container.replaceChildren(
    ...labels.map((label, i) => {
      const row = document.createElement("div");
      row.className = "bar" + (i === highlight ? " top" : "");
      row.innerHTML = '<span class="label"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
      row.querySelector(".label").textContent = label;
      row.querySelector(".fill").style.width = `${(100 * Math.max(0, Math.min(1, values[i]))).toFixed(1)}%`;
      row.querySelector(".value").textContent = values[i].toFixed(3);
      return row;
    }),
  );
}

/** `fn` called once input has paused for `ms`. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A metric for people: accuracies as percentages, the rest with 4 significant digits. */
export function formatMetric(key, value) {
  if (/accuracy/.test(key) && value <= 1) return `${(100 * value).toFixed(2)}%`;
  return Number(value).toPrecision(4);
}
