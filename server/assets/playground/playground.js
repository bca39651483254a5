// Modelcrate's playground: a form for every served model, fitted to its task, calling the
// server's own public routes (the Inference API's `/models/{name}/predict`, and
// `/models/{name}/image-embeddings`). No build step, no dependency: it is served from the
// binary. What it renders carries the answer's values in data attributes, so that a test
// in a real browser can compare what is shown with what the API answers.
"use strict";

const $ = (tag, attributes = {}, ...children) => {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") element.textContent = value;
    else element.setAttribute(name, value);
  }
  for (const child of children) element.append(child);
  return element;
};

const COLOURS = ["#2f6fdf", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d"];
const colourOf = (labels, label) => COLOURS[Math.max(0, labels.indexOf(label)) % COLOURS.length];

/** POSTs `body` to `path`; the parsed answer, its status and the server's total time. */
async function call(path, body, contentType = "application/json") {
  const started = performance.now();
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": contentType, Accept: "application/json" },
    body: contentType === "application/json" ? JSON.stringify(body) : body,
  });
  const text = await response.text();
  let answer;
  try { answer = JSON.parse(text); } catch { answer = text; }
  return {
    ok: response.ok, status: response.status, answer,
    serverMs: response.headers.get("x-total-time"),
    roundTripMs: (performance.now() - started).toFixed(1),
  };
}

/** Label–score bars, best first (as the answer orders them). */
function bars(scores) {
  const grid = $("div", { class: "bars", "data-result": "labels" });
  for (const { label, score } of scores) {
    const row = [
      $("div", { class: "name", text: label }),
      $("div", { class: "track" }, $("div", { class: "fill", style: `width:${(score * 100).toFixed(2)}%` })),
      $("div", { class: "value", text: score.toFixed(4) }),
    ];
    row[0].dataset.label = label;
    row[0].dataset.score = String(score);
    grid.append(...row);
  }
  return grid;
}

/** `text` with `spans` ({start, end, label, score}, character offsets) marked. */
function highlighted(text, spans, labels) {
  const box = $("div", { class: "highlighted", "data-result": "spans" });
  const characters = Array.from(text);
  let at = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    if (span.start < at) continue;
    box.append(characters.slice(at, span.start).join(""));
    const colour = colourOf(labels, span.label);
    const mark = $("mark", { style: `background:${colour}22;border:1px solid ${colour}` },
      characters.slice(span.start, span.end).join(""),
      $("span", { class: "type", style: `color:${colour}`, text: span.label }));
    Object.assign(mark.dataset, { label: span.label, start: span.start, end: span.end, score: span.score });
    box.append(mark);
    at = span.end;
  }
  box.append(characters.slice(at).join(""));
  return box;
}

const cosine = (a, b) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
};

const lines = (text) => text.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);

/** A form: its fields, a button, and where the answer goes; `run` turns the fields into
 * a request and the answer into what is shown. */
function form(model, fields, run) {
  const output = $("div", { class: "output", "aria-live": "polite" });
  const button = $("button", { type: "submit", id: "run", text: "Compute" });
  const element = $("form", { id: "form" }, ...fields, button, output);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    output.replaceChildren($("p", { class: "timing", text: "computing…" }));
    try {
      const { shown, result } = await run();
      const raw = $("details", {}, $("summary", { text: "the API's answer" }),
        $("pre", { "data-result": "json", text: JSON.stringify(result.answer, null, 2) }));
      const timing = $("p", { class: "timing", text: `${result.status} · server ${result.serverMs ?? "?"} ms · round trip ${result.roundTripMs} ms` });
      if (result.ok) output.replaceChildren(shown(result.answer), timing, raw);
      else output.replaceChildren($("p", { class: "error", "data-result": "error", text: errorOf(result) }), timing, raw);
    } catch (error) {
      output.replaceChildren($("p", { class: "error", "data-result": "error", text: String(error) }));
    } finally {
      button.disabled = false;
      output.dataset.done = String(Date.now());
    }
  });
  return element;
}

const errorOf = ({ status, answer }) =>
  `${status}: ${typeof answer === "object" ? (answer.error?.message ?? answer.error ?? JSON.stringify(answer)) : answer}`;

const textArea = (id, label, value) => [$("label", { for: id, text: label }), $("textarea", { id, name: id }, value)];
const textInput = (id, label, value) => [$("label", { for: id, text: label }), $("input", { type: "text", id, name: id, value })];
const fileInput = () => [$("label", { for: "image", text: "Image (PNG or JPEG)" }), $("input", { type: "file", id: "image", accept: "image/png,image/jpeg", required: "" })];
const value = (id) => document.getElementById(id).value;
const file = () => document.getElementById("image").files[0];

/** The form of each task; a task added later gets its own entry here. */
const FORMS = {
  "text-classification": (model) => form(model, textArea("text", "Text", "The striker scored twice as United won the cup final."), async () => {
    const result = await call(`/models/${model.name}/predict`, { inputs: value("text"), parameters: { top_k: null } });
    return { result, shown: (answer) => bars(answer) };
  }),
  "token-classification": (model) => form(model, textArea("text", "Text", "Modelcrate 2.4 ships a faster tokenizer for Chromium 124 and Ubuntu 24.04."), async () => {
    const text = value("text");
    const result = await call(`/models/${model.name}/predict`, { inputs: text });
    const types = [...new Set(model.labels.map((l) => l.replace(/^[BI]-/, "")).filter((l) => l !== "O"))];
    return { result, shown: (answer) => highlighted(text, answer.map((e) => ({ ...e, label: e.entity_group })), types) };
  }),
  "question-answering": (model) => form(model, [
    ...textInput("question", "Question", "Which version fixes the memory leak?"),
    ...textArea("context", "Context", "Version 3.2 of the server fixes the memory leak in the cache. Version 3.3 adds a metrics endpoint."),
  ], async () => {
    const context = value("context");
    const result = await call(`/models/${model.name}/predict`, { inputs: { question: value("question"), context } });
    return {
      result, shown: (answer) => $("div", {},
        highlighted(context, answer.answer === undefined ? [] : [{ ...answer, label: "answer" }], ["answer"]),
        $("p", { "data-result": "answer", "data-answer": answer.answer ?? "", "data-score": String(answer.score ?? ""), text: `answer: “${answer.answer ?? ""}” (score ${(answer.score ?? 0).toFixed(4)})` })),
    };
  }),
  "feature-extraction": (model) => form(model, [
    ...textInput("query", "Sentence", "Shares in the bank rose after record profits."),
    ...textArea("others", "Others, one per line: ranked by cosine similarity to the sentence (a search over a pasted list)",
      "The lender's stock climbed on strong earnings.\nThe striker scored twice in the final.\nNew phones went on sale today."),
  ], async () => {
    const others = lines(value("others"));
    const result = await call(`/models/${model.name}/predict`, { inputs: [value("query"), ...others] });
    return {
      result, shown: (answer) => {
        const [query, ...rest] = answer;
        const ranked = rest.map((vector, index) => ({ label: others[index], score: cosine(query, vector) }))
          .sort((a, b) => b.score - a.score);
        return $("div", {}, $("p", { text: `${query.length} dimensions; cosine similarity to the sentence:` }), bars(ranked));
      },
    };
  }),
  "image-classification": (model) => imageForm(model, [], (image) => `/models/${model.name}/predict`, (answer) => bars(answer)),
  "object-detection": (model) => imageForm(model, [], () => `/models/${model.name}/predict`, (answer, url) => boxes(answer, url, model.labels)),
  "zero-shot-image-classification": (model) => imageForm(model, [
    ...textInput("labels", "Candidate labels, comma-separated", "zebra, horse, cat, giraffe"),
    ...textInput("template", "Hypothesis template", model.image_text?.hypothesis_template ?? "This is a photo of {}."),
  ], () => {
    const query = new URLSearchParams({ candidate_labels: value("labels"), hypothesis_template: value("template") });
    return `/models/${model.name}/predict?${query}`;
  }, (answer) => bars(answer)),
};

/** An image form: the file's bytes posted as they are, its type as Content-Type. */
function imageForm(model, fields, path, shown) {
  return form(model, [...fileInput(), ...fields], async () => {
    const image = file();
    if (!image) throw new Error("choose an image first");
    const result = await call(path(image), image, image.type || "application/octet-stream");
    const url = URL.createObjectURL(image);
    return { result, shown: (answer) => shown(answer, url) };
  });
}

/** The image with each detection's box drawn over it, and the detections as bars. */
function boxes(detections, url, labels) {
  const figure = $("div", { class: "figure" });
  const image = $("img", { src: url, alt: "the uploaded image" });
  figure.append(image);
  image.addEventListener("load", () => {
    const sx = image.clientWidth / image.naturalWidth, sy = image.clientHeight / image.naturalHeight;
    for (const d of detections) {
      const colour = colourOf(labels, d.label);
      const box = $("div", { class: "box", style: `left:${d.box.xmin * sx}px;top:${d.box.ymin * sy}px;width:${(d.box.xmax - d.box.xmin) * sx}px;height:${(d.box.ymax - d.box.ymin) * sy}px;border-color:${colour}` },
        $("span", { style: `background:${colour}`, text: `${d.label} ${d.score.toFixed(2)}` }));
      figure.append(box);
    }
  });
  return $("div", {}, figure, bars(detections.map((d) => ({ label: d.label, score: d.score }))));
}

async function main() {
  const list = document.getElementById("models");
  const panel = document.getElementById("model");
  const response = await fetch("/models", { headers: { Accept: "application/json" } });
  const models = await response.json();
  const show = () => {
    const name = decodeURIComponent(location.hash.slice(1)) || models[0]?.name;
    const model = models.find((m) => m.name === name) ?? models[0];
    for (const link of list.querySelectorAll("a")) link.classList.toggle("active", link.dataset.model === model?.name);
    if (!model) { panel.replaceChildren($("p", { text: "No model is served." })); return; }
    const heading = $("div", {}, $("h2", { text: model.name }),
      $("p", {}, $("span", { class: "task", text: model.task }), " · ",
        $("a", { href: `/models/${encodeURIComponent(model.name)}`, text: "model card" })));
    const make = FORMS[model.task];
    if (model.state === "coming") panel.replaceChildren(heading, $("p", { text: "Still coming: its pipeline has not finished. Reload the page once it serves." }));
    else if (!make) panel.replaceChildren(heading, $("p", { text: `No form for ${model.task} yet; the API serves it (see /docs).` }));
    else panel.replaceChildren(heading, make(model));
    panel.dataset.model = model.name;
  };
  list.replaceChildren(...models.map((m) => {
    const link = $("a", { href: `#${encodeURIComponent(m.name)}` }, m.name, $("br"), $("span", { class: "task", text: m.task }));
    link.dataset.model = m.name;
    return $("li", {}, link);
  }));
  window.addEventListener("hashchange", show);
  show();
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  document.getElementById("model").replaceChildren($("p", { class: "error", text: `cannot list the models: ${error}` }));
});
