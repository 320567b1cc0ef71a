// policyqa page. Everything that comes from documents is inserted as text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Append `text` to `parent`, wrapping each occurrence of the matched terms in <mark class="term">.
function appendWithTerms(parent, text, terms) {
  const wanted = terms.filter((t) => t && t.length > 1).sort((a, b) => b.length - a.length);
  const lower = text.toLowerCase();
  let i = 0, plain = "";
  while (i < text.length) {
    const term = wanted.find((t) => lower.startsWith(t.toLowerCase(), i));
    if (term) {
      if (plain) { parent.appendChild(document.createTextNode(plain)); plain = ""; }
      parent.appendChild(el("mark", "term", text.slice(i, i + term.length)));
      i += term.length;
    } else {
      plain += text[i];
      i += 1;
    }
  }
  if (plain) parent.appendChild(document.createTextNode(plain));
}

function renderPassage(hit) {
  const p = el("p", "passage");
  const text = hit.text;
  const a = Math.max(0, Math.min(hit.answer_start || 0, text.length));
  const b = Math.max(a, Math.min(hit.answer_end || 0, text.length));
  const terms = hit.matched_terms || [];
  appendWithTerms(p, text.slice(0, a), terms);
  if (b > a) {
    const answer = el("mark", "answer");
    appendWithTerms(answer, text.slice(a, b), terms);
    p.appendChild(answer);
  }
  appendWithTerms(p, text.slice(b), terms);
  return p;
}

function renderHit(hit) {
  const li = el("li", "result");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "rank", "#" + hit.rank));
  meta.appendChild(el("span", "score", "得分 " + Number(hit.score).toFixed(4)));
  meta.appendChild(el("span", "source", "来源：" + hit.source));
  if (hit.section) meta.appendChild(el("span", "section", "章节：" + hit.section));
  li.appendChild(meta);
  li.appendChild(renderPassage(hit));
  return li;
}

async function runSearch(q, k) {
  const status = $("status"), list = $("results");
  status.className = "";
  status.textContent = "搜索中…";
  list.replaceChildren();
  try {
    const resp = await fetch("/api/search?" + new URLSearchParams({ q, k }));
    const data = await resp.json();
    if (!resp.ok) {
      status.className = "warn";
      status.textContent = data.error || ("出错了（" + resp.status + "）");
      return;
    }
    if (data.confident === false) {
      status.className = "warn";
      const missing = (data.confidence && data.confidence.missing) || [];
      status.textContent = "未找到可靠答案" +
        (missing.length ? "（文档中没有出现：" + missing.join("、") + "）" : "") +
        "，以下是最接近的段落：";
    } else {
      status.textContent = data.results.length
        ? "找到 " + data.results.length + " 条结果（" + data.took_ms + " 毫秒）"
        : "没有找到相关段落。";
    }
    for (const hit of data.results) list.appendChild(renderHit(hit));
  } catch (err) {
    status.className = "warn";
    status.textContent = "无法连接服务：" + err;
  }
}

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  history.replaceState(null, "", "?q=" + encodeURIComponent(q));
  runSearch(q, $("k").value);
});

for (const button of document.querySelectorAll(".example")) {
  button.addEventListener("click", () => {
    $("q").value = button.textContent;
    $("search-form").requestSubmit();
  });
}

fetch("/api/health").then((r) => r.json()).then((h) => {
  if (h.status === "ok") $("footer").textContent = "已索引 " + h.documents + " 份文件、" + h.chunks + " 个段落 · 模型 " + h.model;
}).catch(() => {});

const initial = new URLSearchParams(location.search).get("q");
if (initial) { $("q").value = initial; runSearch(initial, $("k").value); }
