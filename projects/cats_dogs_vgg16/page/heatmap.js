// A Grad-CAM heat map ([h][w] values in [0, 1]) as an image the size of the photo: bilinear upsampling
// (pixel centres, edges clamped, as tf.image.resize does), then the jet colour map of evaluate.py's plots.

/** Jet: 0 dark blue, 0.25 blue-cyan, 0.5 green-yellow, 0.75 orange-red, 1 dark red; [r, g, b] 0-255. */
export function jet(value) {
  const v = Math.min(1, Math.max(0, value));
  const channel = (centre) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - centre))));
  return [channel(3), channel(2), channel(1)];
}

/** The value at pixel (x, y) of a width x height image made from the h x w grid. */
export function sample(grid, width, height, x, y) {
  const h = grid.length, w = grid[0].length;
  const gy = Math.min(h - 1, Math.max(0, ((y + 0.5) * h) / height - 0.5));
  const gx = Math.min(w - 1, Math.max(0, ((x + 0.5) * w) / width - 0.5));
  const y0 = Math.floor(gy), x0 = Math.floor(gx);
  const y1 = Math.min(h - 1, y0 + 1), x1 = Math.min(w - 1, x0 + 1);
  const fy = gy - y0, fx = gx - x0;
  const top = grid[y0][x0] * (1 - fx) + grid[y0][x1] * fx;
  const bottom = grid[y1][x0] * (1 - fx) + grid[y1][x1] * fx;
  return top * (1 - fy) + bottom * fy;
}

/** An opaque width x height ImageData of the grid in jet colours. */
export function heatImage(grid, width, height) {
  const image = new ImageData(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      image.data.set([...jet(sample(grid, width, height, x, y)), 255], 4 * (y * width + x));
    }
  }
  return image;
}

/** The colour scale from 0 to 1, left to right, filling `canvas`. */
export function drawScale(canvas) {
  const row = [Array.from({ length: canvas.width }, (_, i) => i / (canvas.width - 1))];
  const scaled = heatImage(row, canvas.width, 1);
  const context = canvas.getContext("2d");
  for (let y = 0; y < canvas.height; y++) context.putImageData(scaled, 0, y);
}
