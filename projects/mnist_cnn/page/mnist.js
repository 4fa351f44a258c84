// MNIST's form, as projects/mnist_cnn/predict.py makes it with OpenCV: grey, a bright digit on black, the
// digit scaled to fit 20x20 and centred by its centre of mass in a 28x28 frame.

/** Otsu's threshold of grey values 0-255. */
function otsu(grey) {
  const histogram = new Array(256).fill(0);
  for (const v of grey) histogram[Math.round(v)]++;
  const total = grey.length;
  let sum = 0;
  for (let i = 0; i < 256; i++) sum += i * histogram[i];
  let below = 0, belowSum = 0, best = 0, threshold = 0;
  for (let t = 0; t < 256; t++) {
    below += histogram[t];
    if (below === 0 || below === total) continue;
    belowSum += t * histogram[t];
    const meanBelow = belowSum / below, meanAbove = (sum - belowSum) / (total - below);
    const between = below * (total - below) * (meanBelow - meanAbove) ** 2;
    if (between > best) { best = between; threshold = t; }
  }
  return threshold;
}

/** Area-averaging resize of a [h, w] float image to [outH, outW] (OpenCV's INTER_AREA when shrinking). */
function resize(image, h, w, outH, outW) {
  const out = new Float32Array(outH * outW);
  const sy = h / outH, sx = w / outW;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const y0 = y * sy, y1 = y0 + sy, x0 = x * sx, x1 = x0 + sx;
      let total = 0, weight = 0;
      for (let iy = Math.floor(y0); iy < Math.min(h, Math.ceil(y1)); iy++) {
        const wy = Math.min(y1, iy + 1) - Math.max(y0, iy);
        for (let ix = Math.floor(x0); ix < Math.min(w, Math.ceil(x1)); ix++) {
          const wx = Math.min(x1, ix + 1) - Math.max(x0, ix);
          total += image[iy * w + ix] * wy * wx;
          weight += wy * wx;
        }
      }
      out[y * outW + x] = weight > 0 ? total / weight : 0;
    }
  }
  return out;
}

/** Bilinear sample of a 28x28 frame, 0 outside. */
function sample(frame, y, x) {
  const y0 = Math.floor(y), x0 = Math.floor(x);
  let value = 0;
  for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
    const yy = y0 + dy, xx = x0 + dx;
    if (yy < 0 || yy > 27 || xx < 0 || xx > 27) continue;
    value += frame[yy * 28 + xx] * (1 - Math.abs(y - yy)) * (1 - Math.abs(x - xx));
  }
  return value;
}

/** Grey values (0-255) of an RGBA ImageData. */
export function greyOf(imageData) {
  const { data, width, height } = imageData;
  const grey = new Float32Array(width * height);
  for (let i = 0; i < grey.length; i++) {
    const alpha = data[4 * i + 3] / 255; // a transparent pixel is background: white under it
    const rgb = 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2];
    grey[i] = rgb * alpha + 255 * (1 - alpha);
  }
  return grey;
}

/** A grey image of one digit -> 28 rows of 28 uint8 values; throws when there is no digit. */
export function toMnist(grey, width, height) {
  const border = [];
  for (let x = 0; x < width; x++) border.push(grey[x], grey[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) border.push(grey[y * width], grey[y * width + width - 1]);
  border.sort((a, b) => a - b);
  let image = grey;
  if (border[Math.floor(border.length / 2)] > 127) image = grey.map((v) => 255 - v); // dark on light
  let min = 255, max = 0;
  for (const v of image) { min = Math.min(min, v); max = Math.max(max, v); }
  const threshold = otsu(image);
  let top = height, bottom = -1, left = width, right = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (image[y * width + x] > threshold) {
        top = Math.min(top, y); bottom = Math.max(bottom, y);
        left = Math.min(left, x); right = Math.max(right, x);
      }
    }
  }
  if (bottom < 0 || max - min < 30) throw new Error("no digit found (the image is blank or has almost no contrast)");
  const h = bottom - top + 1, w = right - left + 1;
  let digit = new Float32Array(h * w), digitMax = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      digit[y * w + x] = image[(top + y) * width + left + x];
      digitMax = Math.max(digitMax, digit[y * w + x]);
    }
  }
  const floor = threshold / 2, stretch = 255 / Math.max(1, digitMax - floor);
  digit = digit.map((v) => Math.min(255, Math.max(0, (v - floor) * stretch)));
  const scale = 20 / Math.max(h, w);
  const outH = Math.max(1, Math.round(h * scale)), outW = Math.max(1, Math.round(w * scale));
  const small = resize(digit, h, w, outH, outW);
  const frame = new Float32Array(28 * 28);
  const y0 = Math.floor((28 - outH) / 2), x0 = Math.floor((28 - outW) / 2);
  let mass = 0, my = 0, mx = 0;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const v = small[y * outW + x];
      frame[(y0 + y) * 28 + x0 + x] = v;
      mass += v; my += v * (y0 + y); mx += v * (x0 + x);
    }
  }
  const dy = mass > 0 ? 14 - my / mass : 0, dx = mass > 0 ? 14 - mx / mass : 0;
  const rows = [];
  for (let y = 0; y < 28; y++) {
    const row = [];
    for (let x = 0; x < 28; x++) row.push(Math.round(Math.min(255, Math.max(0, sample(frame, y - dy, x - dx)))));
    rows.push(row);
  }
  return rows;
}
