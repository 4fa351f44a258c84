import { guarded, modelInfo, modelName, predict, showError } from "/static/pages.js";

const COUNT = 16;
const digit = document.getElementById("digit");
const signature = { latentDim: 0, conditional: false };

/** One standard normal number (Box-Muller; 1 - random() is never 0, so the log is finite). */
function normal() {
  const u = 1 - Math.random(), v = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** latent_dim and whether there is a label input, from the serving signature (TF Serving's metadata). */
async function readSignature() {
  const response = await fetch(`/v1/models/${encodeURIComponent(modelName())}/metadata`);
  const reply = await response.json();
  if (!response.ok) throw new Error(reply.error || `the server answered ${response.status}`);
  const inputs = reply.metadata.signature_def.signature_def.serving_default.inputs;
  const dims = inputs.latent?.tensor_shape?.dim || [];
  signature.latentDim = Number(dims[1]?.size);
  if (!(signature.latentDim > 0)) throw new Error("the model's signature has no latent input of a known width");
  signature.conditional = "label" in inputs;
  document.getElementById("about").textContent = signature.conditional
    ? `A class-conditional generator: latent vectors of ${signature.latentDim} numbers and the digit to draw.`
    : `An unconditional generator: latent vectors of ${signature.latentDim} numbers; the digit is its choice.`;
  document.getElementById("choice").hidden = !signature.conditional;
  document.getElementById("asked").hidden = !signature.conditional;
}

function request() {
  const latent = Array.from({ length: COUNT }, () => Array.from({ length: signature.latentDim }, normal));
  if (!signature.conditional) return { inputs: { latent } };
  const chosen = digit.value;
  const label = latent.map(() => (chosen === "any" ? Math.floor(Math.random() * 10) : Number(chosen)));
  return { inputs: { latent, label } };
}

/** Each image on a canvas of its own, one pixel per pixel (CSS scales it up). */
function draw(images, labels) {
  document.getElementById("grid").replaceChildren(
    ...images.map((rows, i) => {
      const figure = document.createElement("figure");
      figure.setAttribute("role", "listitem");
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 28;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", labels ? `generated digit ${labels[i]}` : `generated digit ${i + 1}`);
      const context = canvas.getContext("2d");
      const image = context.createImageData(28, 28);
      rows.flat().forEach((v, j) => image.data.set([v, v, v, 255], 4 * j));
      context.putImageData(image, 0, 0);
      figure.append(canvas);
      if (labels) {
        const caption = document.createElement("figcaption");
        caption.textContent = String(labels[i]); // the digit asked for (the line above the grid says so)
        figure.append(caption);
      }
      return figure;
    }),
  );
}

const button = document.getElementById("generate");
button.addEventListener("click", () =>
  guarded(async () => {
    button.disabled = true;
    try {
      const body = request();
      const reply = await predict(body);
      // one output: TF Serving's columnar reply is the images themselves, not a dict of outputs
      draw(Array.isArray(reply.outputs) ? reply.outputs : reply.outputs.images, body.inputs.label);
    } finally {
      button.disabled = false;
    }
  }),
);

for (let d = 0; d <= 9; d++) digit.append(new Option(String(d), String(d)));
modelInfo().catch((error) => showError(error.message));
guarded(async () => {
  await readSignature();
  button.disabled = false;
});
