import { bars, guarded, modelInfo, onFile, predict, showError } from "/static/pages.js";
import { greyOf, toMnist } from "./mnist.js";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
let drawing = false, sending = false, again = false;

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
  document.getElementById("answer").textContent = "-";
  document.getElementById("bars").replaceChildren();
  showError("");
}

/** Sends the digit; while a request is out, only the latest drawing waits (no queue of stale requests). */
async function classify(rows) {
  if (sending) { again = rows; return; }
  sending = true;
  const image = seen.createImageData(28, 28);
  rows.flat().forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
  seen.putImageData(image, 0, 0);
  await guarded(async () => {
    const reply = await predict({ instances: [rows] });
    const { probabilities, digit } = reply.predictions[0];
    document.getElementById("answer").textContent = String(digit);
    bars(document.getElementById("bars"), [..."0123456789"], probabilities, digit);
  });
  sending = false;
  if (again) { const next = again; again = false; classify(next); }
}

function classifyPad() {
  try {
    classify(toMnist(greyOf(ink.getImageData(0, 0, pad.width, pad.height)), pad.width, pad.height));
  } catch (error) {
    showError(error.message);
  }
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  ink.beginPath();
  ink.moveTo(...point(event));
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  ink.lineTo(...point(event));
  ink.strokeStyle = "#fff";
  ink.lineWidth = 20;
  ink.lineCap = ink.lineJoin = "round";
  ink.stroke();
  classifyPad();
});
pad.addEventListener("pointerup", () => { drawing = false; classifyPad(); });
document.getElementById("clear").addEventListener("click", clearPad);

onFile(document.getElementById("drop"), document.getElementById("file"), async (file) => {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    showError(`${file.name} is not an image this browser can read (PNG, JPEG, GIF, BMP, WebP)`);
    return;
  }
  const scale = Math.min(1, 560 / Math.max(bitmap.width, bitmap.height));
  const canvas = new OffscreenCanvas(Math.max(1, Math.round(bitmap.width * scale)), Math.max(1, Math.round(bitmap.height * scale)));
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  try {
    classify(toMnist(greyOf(context.getImageData(0, 0, canvas.width, canvas.height)), canvas.width, canvas.height));
  } catch (error) {
    showError(`${file.name}: ${error.message}`);
  }
});

clearPad();
modelInfo().catch((error) => showError(error.message));
