import { bars, debounce, guarded, modelInfo, predict, showError } from "/static/pages.js";

const review = document.getElementById("review");
// each edit takes a ticket; a reply is shown only when no edit came after its request was made, so a slow
// reply to older text never overwrites the answer to the text in the box
let latest = 0;

function show(probability) {
  const verdict = probability === null ? "-" : probability >= 0.5 ? "positive" : "negative";
  document.getElementById("verdict").textContent = verdict;
  document.getElementById("probability").textContent = probability === null ? "-" : probability.toFixed(4);
  document.getElementById("hint").hidden = probability !== null || review.value.trim() !== "";
  const container = document.getElementById("bars");
  if (probability === null) container.replaceChildren();
  else bars(container, ["negative", "positive"], [1 - probability, probability], probability >= 0.5 ? 1 : 0);
}

async function score(text, ticket) {
  await guarded(async () => {
    let reply;
    try {
      reply = await predict({ instances: [text] });
    } catch (error) {
      if (ticket !== latest) return; // an error about text that is no longer in the box
      throw error;
    }
    if (ticket === latest) show(reply.predictions[0]);
  });
}

const scoreSoon = debounce(score, 300);

review.addEventListener("input", () => {
  const ticket = ++latest;
  if (!review.value.trim()) {
    // nothing to score: no request, no error; the answer to the old text goes away at once
    showError("");
    show(null);
    return;
  }
  scoreSoon(review.value, ticket);
});

show(null);
modelInfo().catch((error) => showError(error.message));
