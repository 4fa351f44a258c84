import { bars, base64Of, guarded, modelInfo, onFile, predict, showError } from "/static/pages.js";
import { drawScale, heatImage } from "./heatmap.js";

const ALPHA = 0.45; // the heat map's opacity over the photo
const MAX_SIDE = 800; // the photo is drawn at most this large: a 12 MP photo would make a 48 MB canvas
const view = document.getElementById("view");
const overlay = document.getElementById("overlay");
const result = document.getElementById("result");
let shown = null; // { photo, heat }: what the canvas draws, kept so the overlay switch can redraw it
let latest = 0; // the newest request: a slower, older reply is not shown over it
let imageSize = "square"; // what the model reads, e.g. 224x224, once modelInfo() has said

/** The photo, then (when switched on) the heat map over it. */
function draw() {
  if (!shown) return;
  const context = view.getContext("2d");
  context.globalAlpha = 1;
  context.drawImage(shown.photo, 0, 0, view.width, view.height);
  if (overlay.checked) {
    context.globalAlpha = ALPHA;
    context.drawImage(shown.heat, 0, 0);
    context.globalAlpha = 1;
  }
}

/** The photo at its own shape, at most MAX_SIDE pixels on its longer side; the heat map the same size. */
function show(photo, heatmap, label) {
  const scale = Math.min(1, MAX_SIDE / Math.max(photo.width, photo.height));
  view.width = Math.max(1, Math.round(photo.width * scale));
  view.height = Math.max(1, Math.round(photo.height * scale));
  const heat = new OffscreenCanvas(view.width, view.height);
  heat.getContext("2d").putImageData(heatImage(heatmap, view.width, view.height), 0, 0);
  shown = { photo, heat };
  view.setAttribute("aria-label", `the photo, with a heat map of where the model looked to answer ${label}`);
  draw();
}

function showAnswer(prediction) {
  const { label, dog_probability: dog, heatmap } = prediction;
  document.getElementById("answer").textContent = label;
  document.getElementById("probability").textContent = (label === "dog" ? dog : 1 - dog).toFixed(3);
  bars(document.getElementById("bars"), ["cat", "dog"], [1 - dog, dog], label === "dog" ? 1 : 0);
  const cells = `${heatmap.length}x${heatmap[0].length}`;
  document.getElementById("grid").textContent = `block5_conv3, ${cells} cells over the ${imageSize} image it reads`;
}

async function classify(file) {
  const request = ++latest;
  result.hidden = true; // no earlier answer beside this photo's error
  const reply = await guarded(async () => {
    const body = { signature_name: "gradcam", instances: [{ b64: await base64Of(file) }] };
    return predict(body);
  });
  if (!reply || request !== latest) return;
  let photo;
  try {
    photo = await createImageBitmap(file, { imageOrientation: "none" }); // as the model reads it
  } catch {
    showError(`the model answered, but this browser cannot show ${file.name}`);
    return;
  }
  if (request !== latest) return;
  showAnswer(reply.predictions[0]);
  result.hidden = false;
  show(photo, reply.predictions[0].heatmap, reply.predictions[0].label);
}

async function start() {
  drawScale(document.getElementById("scale"));
  overlay.addEventListener("change", draw);
  onFile(document.getElementById("drop"), document.getElementById("file"), classify);
  const entry = await modelInfo().catch((error) => showError(error.message));
  const size = entry && entry.info && entry.info.image_size;
  if (size) imageSize = `${size}x${size}`;
}

start();
