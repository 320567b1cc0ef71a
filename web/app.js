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

// The passage with its matched terms marked, and its answering sentence too when the search is `sure`: a
// passage the search is not confident about has no sentence that answers.
function renderPassage(hit, sure) {
  const p = el("p", "passage");
  const text = hit.text;
  const a = sure ? Math.max(0, Math.min(hit.answer_start || 0, text.length)) : 0;
  const b = sure ? Math.max(a, Math.min(hit.answer_end || 0, text.length)) : 0;
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

// The message a person reads for a failed request: the API's Chinese `message`, else a Chinese fallback.
function failure(data, status) {
  return (data && data.message) || ("请求失败（" + status + "），请稍后重试。");
}

function metaFacts(m) {
  if (!m) return [];
  return [m.issuer, m.doc_number, m.date && ("日期 " + m.date)].filter(Boolean);
}

// 标题（文号） › 章节：原文, for pasting into a report: the answering sentence, or the whole passage.
function citation(hit, sure) {
  const m = hit.metadata || {};
  const title = m.title || hit.title || hit.source;
  const head = title + (m.doc_number ? "（" + m.doc_number + "）" : "");
  const a = sure ? hit.answer_start || 0 : 0, b = sure ? hit.answer_end || 0 : 0;
  const quote = b > a ? hit.text.slice(a, b) : hit.text;
  return [head, hit.section].filter(Boolean).join(" › ") + "：" + quote.trim();
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) {
    const area = el("textarea", "offscreen");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function actions(hit, sure) {
  const row = el("div", "actions");
  const read = el("button", "read", "查看原文");
  read.type = "button";
  read.addEventListener("click", () => openReader(hit));
  const cite = el("button", "cite", "复制引用");
  cite.type = "button";
  cite.addEventListener("click", async () => {
    const ok = await copyText(citation(hit, sure));
    cite.textContent = ok ? "已复制" : "复制失败";
    setTimeout(() => { cite.textContent = "复制引用"; }, 2000);
  });
  const ack = el("span", "ack");  // what became of a mark or of 设为常见问题, said quietly
  ack.setAttribute("role", "status");
  row.append(read, cite, ...feedbackButtons(hit, ack));
  if (token()) row.append(knownButton(hit, ack));
  row.append(ack);
  return row;
}

// --- readers' marks and operators' known questions on a result ------------------------------------

let lastQuery = "";  // the question the results answer
let snapshot = "";  // the snapshot serving them (from /api/health), sent with each mark

function button(className, text) {
  const b = el("button", className, text);
  b.type = "button";
  return b;
}

const MARKED_KEY = "policyqa-marked";  // question and passage of each mark sent from this tab

function marked() {
  try { return JSON.parse(sessionStorage.getItem(MARKED_KEY) || "{}"); } catch (err) { return {}; }
}

// 有帮助 / 没帮助: no token needed, once per result (also when the same search is shown again), acknowledged
// quietly in `ack`.
function feedbackButtons(hit, ack) {
  const q = lastQuery, key = q + "\u001f" + hit.chunk_id;
  const yes = button("helpful", "有帮助"), no = button("unhelpful", "没帮助");
  const settle = (helpful) => {
    yes.disabled = no.disabled = true;
    (helpful ? yes : no).classList.add("chosen");
  };
  if (key in marked()) { settle(marked()[key]); ack.textContent = "已记录"; }
  const send = async (helpful) => {
    settle(helpful);
    const body = { q, chunk_id: hit.chunk_id, doc_id: hit.doc_id, helpful, snapshot };
    try {
      const resp = await fetch("/api/feedback", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (resp.ok) {
        ack.textContent = "已记录";
        sessionStorage.setItem(MARKED_KEY, JSON.stringify({ ...marked(), [key]: helpful }));
        return;
      }
      ack.textContent = failure(await resp.json().catch(() => ({})), resp.status);
    } catch (err) {
      ack.textContent = "未能记录，请稍后重试。";
    }
    yes.disabled = no.disabled = false;  // not recorded: may be sent again
    (helpful ? yes : no).classList.remove("chosen");
  };
  yes.addEventListener("click", () => send(true));
  no.addEventListener("click", () => send(false));
  return [yes, no];
}

// 设为常见问题 (admin): the question, confirmed by the operator, attached to this passage.
function knownButton(hit, ack) {
  const known = button("make-known", "设为常见问题");
  const asked = lastQuery;
  known.addEventListener("click", async () => {
    const q = prompt("确认常见问题的文字（将关联到这一段）：", asked);
    if (q === null || !q.trim()) return;
    known.disabled = true;
    const result = await addKnown(q.trim(), hit.chunk_id);
    if (result.ok) {
      known.textContent = "已设为常见问题";
      ack.textContent = "索引更新后生效";
    } else {
      known.disabled = false;
      ack.textContent = failure(result.data, result.status);
    }
  });
  return known;
}

async function addKnown(q, chunkId) {
  try {
    const resp = await fetch("/api/questions", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ q, chunk_id: chunkId }),
    });
    return { ok: resp.ok, status: resp.status, data: await resp.json().catch(() => ({})) };
  } catch (err) {
    return { ok: false, status: 0, data: { message: "无法连接服务，请检查网络或稍后重试。" } };
  }
}

function renderHit(hit, sure, label) {
  const li = el("li", "result");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "rank", label || ("#" + hit.rank)));
  meta.appendChild(el("span", "score", "得分 " + Number(hit.score).toFixed(4)));
  meta.appendChild(el("span", "source", "来源：" + hit.source));
  if (hit.section) meta.appendChild(el("span", "section", "章节：" + hit.section));
  li.appendChild(meta);
  // the known question (an operator's, or a shipped legal one) that brought this passage up
  if (hit.matched_question) li.appendChild(el("div", "matched-question", "常见问题：" + hit.matched_question));
  const m = hit.metadata;
  if (m && (m.title || metaFacts(m).length)) {
    const doc = el("div", "doc");
    if (m.title) doc.appendChild(el("span", "doc-title", m.title));
    for (const fact of metaFacts(m)) doc.appendChild(el("span", "doc-fact", fact));
    li.appendChild(doc);
  }
  li.appendChild(renderPassage(hit, sure));
  li.appendChild(actions(hit, sure));
  if (hit.more && hit.more.length) {
    const more = el("details", "more");
    more.appendChild(el("summary", "", "本文档更多段落（" + hit.more.length + "）"));
    const list = el("ol", "more-list");
    hit.more.forEach((h, i) => list.appendChild(renderHit(h, sure, "#" + hit.rank + "." + (i + 1))));
    more.appendChild(list);
    li.appendChild(more);
  }
  return li;
}

function filterParams() {
  const params = [];
  for (const option of $("f-doc").selectedOptions) params.push(["doc_id", option.value]);
  const fields = { folder: "f-folder", issuer: "f-issuer", after: "f-after", before: "f-before" };
  for (const [name, id] of Object.entries(fields)) {
    const value = $(id).value.trim();
    if (value) params.push([name, value]);
  }
  if ($("f-group").checked) params.push(["group", "true"]);
  return params;
}

// What heads the list: how much was found; or, when the search is not confident, first a notice that says so
// and why (the API's confidence.reason_text), then the list titled as the closest passages, not as answers.
function summary(data, sure, filtered) {
  const scope = filtered ? "，已按筛选条件限定" : "";
  if (sure) {
    const unit = data.grouped ? " 份文档" : " 条结果";
    return [el("span", "", "找到 " + data.results.length + unit + "（" + data.took_ms + " 毫秒）" + scope)];
  }
  const notice = el("div", "notice");
  notice.append(el("strong", "notice-title", "未找到可靠答案"));
  const reason = data.confidence && data.confidence.reason_text;
  if (reason) notice.append(el("span", "notice-reason", reason));
  const unit = data.grouped ? " 份文档" : " 段";
  return [notice, el("span", "list-title", "最接近的段落（" + data.results.length + unit + scope + "）")];
}

async function runSearch(q, k) {
  const status = $("status"), list = $("results");
  closeReader();
  status.className = "";
  status.textContent = "搜索中…";
  list.replaceChildren();
  const filtered = filterParams().some(([name]) => name !== "group");
  try {
    const resp = await fetch("/api/search?" + new URLSearchParams([["q", q], ["k", k], ...filterParams()]));
    const data = await resp.json();
    if (!resp.ok) {
      status.className = "warn";
      status.textContent = failure(data, resp.status);
      return;
    }
    if (!data.results.length) {
      status.className = "warn";
      status.textContent = filtered ? "在筛选范围内没有找到相关段落，可以放宽筛选条件再试。" : "没有找到相关段落。";
      return;
    }
    const sure = data.confident !== false;
    lastQuery = data.query || q;
    status.replaceChildren(...summary(data, sure, filtered));
    for (const hit of data.results) list.appendChild(renderHit(hit, sure));
  } catch (err) {
    status.className = "warn";
    status.textContent = "无法连接服务，请检查网络或稍后重试。";
  }
}

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = $("q").value.trim();
  if (!q) { $("status").className = "warn"; $("status").textContent = "请输入问题。"; return; }
  history.replaceState(null, "", "?q=" + encodeURIComponent(q));
  runSearch(q, $("k").value);
});

for (const button of document.querySelectorAll(".example")) {
  button.addEventListener("click", () => {
    $("q").value = button.textContent;
    $("search-form").requestSubmit();
  });
}

$("f-clear").addEventListener("click", () => {
  for (const option of $("f-doc").options) option.selected = false;
  for (const id of ["f-folder", "f-issuer", "f-after", "f-before"]) $(id).value = "";
  $("f-group").checked = false;
});

// Fill the filter choices from the documents of the index.
async function loadFilterChoices() {
  try {
    const resp = await fetch("/api/documents");
    if (!resp.ok) return;
    const data = await resp.json();
    const docs = $("f-doc"), folders = new Set(), issuers = new Set();
    docs.replaceChildren();
    for (const d of data.documents) {
      const m = d.metadata || {};
      const option = el("option", "", (m.title || d.title || d.source) + (m.date ? "（" + m.date + "）" : ""));
      option.value = d.doc_id;
      option.title = d.source;
      docs.appendChild(option);
      const parts = d.source.split("/");
      for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
      if (m.issuer) issuers.add(m.issuer);
    }
    const folder = $("f-folder");
    folder.replaceChildren(el("option", "", "全部文件夹"));
    folder.firstChild.value = "";
    for (const name of [...folders].sort()) {
      const option = el("option", "", name);
      option.value = name;
      folder.appendChild(option);
    }
    $("f-issuers").replaceChildren(...[...issuers].sort().map((name) => { const o = el("option"); o.value = name; return o; }));
  } catch (err) { /* filters stay empty; searching still works */ }
}

// --- 查看原文: the whole document, the passage highlighted, the outline navigable --------------

let readerFrom = null;

function closeReader() {
  if ($("reader").hidden) return;
  $("reader").hidden = true;
  $("results").hidden = false;
  if (readerFrom) readerFrom.focus();
}

// The text as nodes: an anchor before each heading of the outline, the passage [start, end) in <mark>.
function renderText(article, text, outline, start, end) {
  const cuts = new Set([0, text.length, start, end]);
  outline.forEach((o) => cuts.add(o.start));
  const points = [...cuts].filter((x) => x >= 0 && x <= text.length).sort((a, b) => a - b);
  const heads = new Map(outline.map((o, i) => [o.start, i]));
  article.replaceChildren();
  for (let n = 0; n + 1 < points.length; n++) {
    const a = points[n], b = points[n + 1];
    if (heads.has(a)) {
      const anchor = el("span", "anchor");
      anchor.id = "outline-" + heads.get(a);
      article.appendChild(anchor);
    }
    const piece = text.slice(a, b);
    article.appendChild(a >= start && b <= end && end > start ? el("mark", "passage-mark", piece) : document.createTextNode(piece));
  }
}

async function openReader(hit) {
  const status = $("status");
  readerFrom = document.activeElement;
  try {
    const resp = await fetch("/api/documents/" + encodeURIComponent(hit.doc_id) + "/text");
    const doc = await resp.json();
    if (!resp.ok) { status.className = "warn"; status.textContent = failure(doc, resp.status); return; }
    const m = doc.metadata || {};
    $("reader-title").textContent = m.title || doc.title || doc.source;
    const facts = metaFacts(m);
    if (m.adopted) facts.push(m.adopted + " 通过");
    for (const r of m.revised || []) facts.push(r + " 修正");
    $("reader-meta").replaceChildren(...[...facts, "来源：" + doc.source].map((f) => el("span", "doc-fact", f)));
    $("reader-download").href = "/api/documents/" + encodeURIComponent(doc.doc_id) + "/original";
    $("reader-download").setAttribute("download", doc.source.split("/").pop());
    const list = $("reader-outline").querySelector("ol");
    list.replaceChildren();
    doc.outline.forEach((o, i) => {
      const item = el("li", "depth-" + Math.min(o.depth, 4));
      const go = el("button", "outline-link", o.title);
      go.type = "button";
      go.addEventListener("click", () => $("outline-" + i).scrollIntoView({ block: "start" }));
      item.appendChild(go);
      list.appendChild(item);
    });
    $("reader-outline").hidden = doc.outline.length === 0;
    renderText($("reader-text"), doc.text, doc.outline, hit.start, hit.end);
    $("results").hidden = true;
    $("reader").hidden = false;
    // the reader's head in view, and the passage a third of the way down the text's own scroll box
    $("reader").scrollIntoView({ block: "start" });
    const article = $("reader-text"), mark = article.querySelector("mark.passage-mark");
    if (mark) article.scrollTop += mark.getBoundingClientRect().top - article.getBoundingClientRect().top - article.clientHeight / 3;
    article.focus({ preventScroll: true });
  } catch (err) {
    status.className = "warn";
    status.textContent = "无法打开原文，请稍后重试。";
  }
}

$("reader-close").addEventListener("click", closeReader);
document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeReader(); });

fetch("/api/health").then((r) => r.json()).then((h) => {
  if (h.snapshot) snapshot = h.snapshot;
  if (h.status === "ok") $("footer").textContent = "已索引 " + h.documents + " 份文件、" + h.chunks + " 个段落 · 模型 " + h.model;
  else if (h.message) $("footer").textContent = h.message;
}).catch(() => {});

loadFilterChoices();

const initial = new URLSearchParams(location.search).get("q");
if (initial) { $("q").value = initial; runSearch(initial, $("k").value); }

// --- admin panel ------------------------------------------------------------------------------

const TOKEN_KEY = "policyqa-admin-token";

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function adminMessage(text, warn) {
  const m = $("admin-message");
  m.className = warn ? "warn" : "";
  m.textContent = text;
}

function authHeaders() {
  return token() ? { Authorization: "Bearer " + token() } : {};
}

function humanSize(bytes) {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

async function loadDocuments() {
  const body = $("documents").querySelector("tbody");
  try {
    const resp = await fetch("/api/documents");
    const data = await resp.json();
    if (!resp.ok) { adminMessage(failure(data, resp.status), true); return; }
    body.replaceChildren();
    for (const doc of data.documents) {
      const tr = el("tr");
      tr.dataset.docId = doc.doc_id;
      tr.appendChild(el("td", "doc-source", doc.source));
      tr.appendChild(el("td", "", doc.title));
      const m = doc.metadata || {};
      tr.appendChild(el("td", "doc-issuer", m.issuer || ""));
      tr.appendChild(el("td", "doc-number", m.doc_number || ""));
      tr.appendChild(el("td", "doc-date", m.date || ""));
      tr.appendChild(el("td", "num", String(doc.chunks)));
      tr.appendChild(el("td", "num", humanSize(doc.size)));
      tr.appendChild(el("td", "", doc.indexed_at.replace("T", " ").replace("Z", " UTC")));
      const cell = el("td");
      const del = el("button", "delete", "删除");
      del.type = "button";
      del.addEventListener("click", () => removeDocument(doc));
      cell.appendChild(del);
      tr.appendChild(cell);
      body.appendChild(tr);
    }
  } catch (err) {
    adminMessage("无法连接服务，请检查网络或稍后重试。", true);
  }
}

function describeJob(job) {
  if (!job) return "索引空闲";
  const names = { queued: "排队中", running: "进行中", done: "已完成", failed: "失败", cancelled: "已取消" };
  let text = "索引任务 " + (names[job.state] || job.state);
  if (job.total) text += "（" + job.done + "/" + job.total + " 段落已向量化）";
  if (job.error) text += "：" + (job.message || "详情见服务器日志");
  return text;
}

async function watchJob(jobId) {
  for (;;) {
    const resp = await fetch("/api/index/jobs/" + encodeURIComponent(jobId));
    const job = await resp.json();
    if (!resp.ok) { adminMessage(failure(job, resp.status), true); return null; }
    $("index-status").textContent = describeJob(job);
    if (job.state === "done" || job.state === "failed" || job.state === "cancelled") {
      await loadDocuments();
      return job;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function showStatus() {
  try {
    const resp = await fetch("/api/index/status");
    const data = await resp.json();
    if (resp.ok) $("index-status").textContent = describeJob(data.job) + (data.last_message ? "（上次错误：" + data.last_message + "）" : "");
  } catch (err) { /* the search part still works */ }
}

function upload(file) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const bar = $("upload-progress");
    xhr.open("POST", "/api/documents");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) { bar.hidden = false; bar.value = Math.round(100 * ev.loaded / ev.total); }
    };
    xhr.onload = () => {
      bar.hidden = true;
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (err) { data = {}; }
      resolve({ ok: xhr.status >= 200 && xhr.status < 300, status: xhr.status, data });
    };
    xhr.onerror = () => { bar.hidden = true; resolve({ ok: false, status: 0, data: { message: "网络错误，上传没有完成。" } }); };
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  adminMessage(token() ? "令牌已保存在本标签页中。" : "令牌已清除。");
  loadQuestions();
  loadFeedback();
});

$("token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  adminMessage("令牌已清除。");
});

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) { adminMessage("请先选择文件。", true); return; }
  adminMessage("正在上传 " + file.name + " …");
  const result = await upload(file);
  if (!result.ok) { adminMessage("上传失败（" + result.status + "）：" + failure(result.data, result.status), true); return; }
  if (result.data.unchanged) {
    adminMessage(result.data.source + " 已在文档库中，内容相同，未重复添加。");
    $("upload-form").reset();
    return;
  }
  adminMessage("已上传 " + result.data.source + "，正在建立索引…");
  const job = await watchJob(result.data.job.id);
  if (job && job.state === "done") adminMessage(result.data.source + " 已可检索。");
  else if (job) adminMessage("索引失败：" + (job.message || "详情见服务器日志"), true);
  $("upload-form").reset();
});

// Once confirmed: DELETE `url` (admin), say what went, refresh with `after`, and follow the update job.
async function adminDelete(ask, url, said, after) {
  if (!confirm(ask)) return;
  const resp = await fetch(url, { method: "DELETE", headers: authHeaders() });
  const data = await resp.json();
  if (!resp.ok) { adminMessage("删除失败（" + resp.status + "）：" + failure(data, resp.status), true); return; }
  adminMessage(said(data));
  if (after) await after();
  await watchJob(data.job.id);
}

function removeDocument(doc) {
  const url = "/api/documents/" + encodeURIComponent(doc.doc_id);
  return adminDelete("删除 " + doc.source + "？", url, (data) => "已删除 " + data.source + "。");
}

$("rebuild").addEventListener("click", async () => {
  const resp = await fetch("/api/index/rebuild", { method: "POST", headers: authHeaders() });
  const data = await resp.json();
  if (!resp.ok) { adminMessage("重建失败（" + resp.status + "）：" + failure(data, resp.status), true); return; }
  adminMessage("已开始重建索引。");
  const job = await watchJob(data.job.id);
  if (job) adminMessage(describeJob(job), job.state === "failed");
});

// --- known questions and readers' marks (admin) ----------------------------------------------------

function cell(className, text) { return el("td", className, text); }

// The admin list's answer, or null after saying in `where` why there is none (no token yet, or an error).
async function adminGet(url, where) {
  where.textContent = "";
  if (!token()) { where.textContent = "填写管理令牌后可查看。"; return null; }
  try {
    const resp = await fetch(url, { headers: authHeaders() });
    const data = await resp.json();
    if (!resp.ok) { where.textContent = failure(data, resp.status); return null; }
    return data;
  } catch (err) {
    where.textContent = "无法连接服务，请检查网络或稍后重试。";
    return null;
  }
}

async function loadQuestions() {
  const data = await adminGet("/api/questions", $("questions-note"));
  const body = $("questions").querySelector("tbody");
  body.replaceChildren();
  if (!data) return;
  $("questions-note").textContent = data.questions.length
    ? "已关联 " + data.attached + " 条，未匹配 " + data.unmatched + " 条（未匹配：文档中已找不到所指的原文）。"
    : "还没有常见问题：在搜索结果上点“设为常见问题”，或把下方读者标记为有帮助的结果设为常见问题。";
  for (const q of data.questions) {
    const tr = el("tr", q.status);
    tr.dataset.id = q.id;
    tr.append(cell("known-q", q.q), cell("", q.source), cell("contains", q.contains));
    tr.appendChild(cell("known-status", q.status === "attached" ? "已关联" : "未匹配"));
    const del = button("delete", "删除");
    del.addEventListener("click", () => removeKnown(q));
    const last = cell();
    last.appendChild(del);
    tr.appendChild(last);
    body.appendChild(tr);
  }
}

function removeKnown(q) {
  const url = "/api/questions/" + encodeURIComponent(q.id);
  return adminDelete("删除常见问题“" + q.q + "”？", url, () => "已删除常见问题“" + q.q + "”。", loadQuestions);
}

async function loadFeedback() {
  const data = await adminGet("/api/feedback", $("feedback-note"));
  const body = $("feedback").querySelector("tbody");
  body.replaceChildren();
  if (!data) return;
  $("feedback-note").textContent = data.total ? "共 " + data.total + " 条标记，最新的在前。" : "还没有读者标记。";
  const counts = new Map(data.passages.map((p) => [p.chunk_id, p]));
  for (const m of data.marks) {
    const tr = el("tr", m.helpful ? "helpful" : "unhelpful");
    const c = counts.get(m.chunk_id) || { helpful: 0, unhelpful: 0 };
    const where = cell("mark-passage", m.passage || "（该段已不在索引中）");
    if (m.source) where.prepend(el("span", "mark-source", m.source + "："));
    tr.append(cell("mark-q", m.q), where, cell("mark-kind", m.helpful ? "有帮助" : "没帮助"));
    tr.append(cell("num", c.helpful + " / " + c.unhelpful), cell("", m.time.replace("T", " ").replace("Z", " UTC")));
    const last = cell();
    if (m.helpful) {
      const make = button("make-known", "设为常见问题");
      make.addEventListener("click", async () => {
        make.disabled = true;
        const result = await addKnown(m.q, m.chunk_id);
        if (!result.ok) { make.disabled = false; adminMessage("设置失败（" + result.status + "）：" + failure(result.data, result.status), true); return; }
        make.textContent = "已设为常见问题";
        adminMessage("已设为常见问题“" + m.q + "”。");
        await loadQuestions();
        await watchJob(result.data.job.id);
      });
      last.appendChild(make);
    }
    tr.appendChild(last);
    body.appendChild(tr);
  }
}

$("admin").addEventListener("toggle", () => {
  if ($("admin").open) { loadDocuments(); showStatus(); loadQuestions(); loadFeedback(); }
});
