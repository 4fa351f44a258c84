// An SVG line of a series with the flagged stretches shaded behind it. Drawn in a fixed 1000-wide viewBox
// stretched to the card's width (no text inside, so nothing is distorted); the numbers go beside it in HTML.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  return node;
}

/**
 * The series as a line over `runs` ([start, stop) of flagged points) shaded; `height` in viewBox units.
 * Each shaded rect carries data-start and data-stop (the points' indices) so it can be checked.
 */
export function linePlot(values, runs, height, label) {
  const n = values.length, step = n > 1 ? WIDTH / (n - 1) : WIDTH;
  const x = (i) => (n > 1 ? i * step : WIDTH / 2);
  let low = Infinity, high = -Infinity; // a loop, not Math.min(...values): a long series overflows the stack
  for (const v of values) { low = Math.min(low, v); high = Math.max(high, v); }
  if (high === low) { low -= 1; high += 1; } // a flat series: a line across the middle
  const pad = 0.05 * (high - low);
  const y = (v) => height - ((v - low + pad) / (high - low + 2 * pad)) * height;
  const svg = element("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": label,
  });
  svg.classList.add("plot");
  for (const [start, stop] of runs) {
    const left = Math.max(0, x(start) - step / 2), right = Math.min(WIDTH, x(stop - 1) + step / 2);
    const rect = element("rect", {
      x: left, y: 0, width: Math.max(right - left, 1), height, "data-start": start, "data-stop": stop,
    });
    rect.classList.add("flagged");
    svg.append(rect);
  }
  const points = values.map((v, i) => `${x(i).toFixed(2)},${y(v).toFixed(2)}`).join(" ");
  svg.append(element("polyline", { points, "vector-effect": "non-scaling-stroke" }));
  return svg;
}
