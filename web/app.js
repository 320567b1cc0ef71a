// policyqa page. Everything that comes from documents is inserted as text nodes, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function cell(className, text) { return el("td", className, text); }

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
  return [head, hit.section, pageName(hit.page)].filter(Boolean).join(" › ") + "：" + quote.trim();
}

// 第N页 for a passage of a PDF; "" for formats without pages (page 0).
function pageName(page) {
  return page ? "第" + page + "页" : "";
}

// How closely a passage matches, in words, against the best passage of the same search: the fused score
// (kept by the API) means nothing to a reader.
function strength(score, best) {
  const ratio = best > 0 ? score / best : 0;
  if (ratio >= 0.85) return ["strong", "匹配度 高"];
  if (ratio >= 0.6) return ["fair", "匹配度 中"];
  return ["weak", "匹配度 低"];
}

// An ISO time of the API (UTC) in the reader's own time zone, written the zh-CN way.
function localTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  return when.toLocaleString("zh-CN", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false });
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
let bestScore = 0;  // the first result's score: the others' 匹配度 is said against it

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

// Where judged on a day other than today, the status says the day (else 截至 the answer's status_on).
let statusOn = "";  // the day the shown results' status was judged on

// The document's 时效性 when it is not 现行有效: its tag (已被替代, 已失效, 尚未生效) and, for a replaced version
// with a version in force, 查看现行版本, which opens that version at the passage matching this one. Null for a
// document in force (or a service that does not say); `link` false: the tag alone.
function validity(hit, link) {
  if (!hit.status || hit.status === "current") return null;
  const row = el("div", "validity");
  const tag = el("span", "status-tag " + hit.status, hit.status_label || hit.status);
  if (statusOn) tag.title = "截至 " + statusOn;
  row.appendChild(tag);
  const twin = hit.current_passage;
  if (link && hit.status === "superseded" && (twin || hit.current_version)) {
    const go = button("current-link", twin ? "查看现行版本的对应段落" : "查看现行版本");
    const target = twin || { doc_id: hit.current_version, start: 0, end: 0, page: 0 };
    go.addEventListener("click", () => openReader({ ...target, status: "current" }));
    row.appendChild(go);
  }
  return row;
}

function renderHit(hit, sure, label) {
  const li = el("li", "result");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "rank", label || ("#" + hit.rank)));
  const [grade, said] = strength(Number(hit.score), bestScore);
  const score = el("span", "score " + grade, said);
  score.title = "与本次最相关的结果相比";
  meta.appendChild(score);
  meta.appendChild(el("span", "source", "来源：" + hit.source));
  if (hit.section) meta.appendChild(el("span", "section", "章节：" + hit.section));
  if (hit.page) meta.appendChild(el("span", "page-no", pageName(hit.page)));
  li.appendChild(meta);
  // the known question (an operator's, or a shipped legal one) that brought this passage up
  const status = validity(hit, true);
  if (status) li.appendChild(status);
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

// A date as people write it in Chinese (2020-01-01, 2020/1/1, 2020.1.1, 2020年1月1日) as the API's 2020-01-01;
// "" when the field is empty, null when it is no date.
function isoDate(text) {
  const t = text.trim();
  if (!t) return "";
  const m = t.match(/^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$/);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d) return null;
  return m[1] + "-" + String(mo).padStart(2, "0") + "-" + String(d).padStart(2, "0");
}

// The filters as query parameters; throws the sentence to show when a date cannot be read.
function filterParams() {
  const params = [];
  for (const box of $("f-doc").querySelectorAll("input:checked")) params.push(["doc_id", box.value]);
  for (const [name, id] of [["folder", "f-folder"], ["issuer", "f-issuer"]]) {
    const value = $(id).value.trim();
    if (value) params.push([name, value]);
  }
  for (const [name, id] of [["after", "f-after"], ["before", "f-before"]]) {
    const value = isoDate($(id).value);
    if (value === null) throw new Error("日期“" + $(id).value.trim() + "”无法识别，请写作 2020-01-01 或 2020年1月1日。");
    if (value) params.push([name, value]);
  }
  if ($("f-current").checked) params.push(["current_only", "true"]);
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
  let filters;
  try {
    filters = filterParams();
  } catch (err) {
    status.className = "warn";
    status.textContent = err.message;
    return;
  }
  const filtered = filters.some(([name]) => name !== "group");
  try {
    const resp = await fetch("/api/search?" + new URLSearchParams([["q", q], ["k", k], ...filters]));
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
    bestScore = Number(data.results[0].score);
    statusOn = data.status_on || "";
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

// 清除筛选 clears every filter and, when there is a question, searches it again without them.
$("f-clear").addEventListener("click", () => {
  for (const box of $("f-doc").querySelectorAll("input")) box.checked = false;
  for (const id of ["f-folder", "f-issuer", "f-after", "f-before"]) $(id).value = "";
  $("f-current").checked = $("f-group").checked = false;
  if ($("q").value.trim()) $("search-form").requestSubmit();
});

// One chip of the 文档 filter: a checkbox and the document's title (its date), tapped on and off.
function docChoice(d, checked) {
  const m = d.metadata || {};
  const chip = el("label", "choice");
  const box = el("input");
  box.type = "checkbox";
  box.value = d.doc_id;
  box.checked = checked;
  chip.title = d.source;
  chip.append(box, el("span", "", (m.title || d.title || d.source) + (m.date ? "（" + m.date + "）" : "")));
  return chip;
}

// Fill the filter choices from the `docs` of the index, keeping what is chosen among those still there.
function fillFilterChoices(docs) {
  const box = $("f-doc"), folders = new Set(), issuers = new Set();
  const chosen = new Set([...box.querySelectorAll("input:checked")].map((b) => b.value));
  box.replaceChildren(...docs.map((d) => docChoice(d, chosen.has(d.doc_id))));
  if (!docs.length) box.appendChild(el("span", "choices-empty", "索引中还没有文档。"));
  for (const d of docs) {
    const parts = d.source.split("/");
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
    if (d.metadata && d.metadata.issuer) issuers.add(d.metadata.issuer);
  }
  const folder = $("f-folder"), was = folder.value;
  folder.replaceChildren(el("option", "", "全部文件夹"));
  folder.firstChild.value = "";
  for (const name of [...folders].sort()) {
    const option = el("option", "", name);
    option.value = name;
    folder.appendChild(option);
  }
  folder.value = folders.has(was) ? was : "";
  $("f-issuers").replaceChildren(...[...issuers].sort().map((name) => { const o = el("option"); o.value = name; return o; }));
}

// --- following the service: ready, and what it indexes ------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let shown = null;  // the snapshot whose documents the filters, the footer and the admin list show

// /api/health's answer (its 503 says why searches cannot be served yet), or null when the service is out of reach.
async function health() {
  try {
    const resp = await fetch("/api/health");
    return await resp.json();
  } catch (err) {
    return null;
  }
}

// The footer: what is indexed, said for a reader (the model's id only as a tooltip for operators).
function sayIndexed(h, docs) {
  const chunks = docs.reduce((n, d) => n + (d.chunks || 0), 0);
  const newest = docs.map((d) => d.indexed_at).filter(Boolean).sort().pop();
  const parts = ["已索引 " + docs.length + " 份文件、" + chunks + " 个段落"];
  if (newest) parts.push("最近更新 " + localTime(newest));
  parts.push(String(h.model).startsWith("hash") ? "测试用检索（不用语义模型）" : "本机离线检索（语义模型与关键词）");
  $("footer").textContent = parts.join(" · ");
  $("footer").title = "模型：" + h.model + "；索引版本：" + h.snapshot;
}

// Bring the filters, the footer and (when open) the admin list up to the service; `force` also when the
// snapshot it serves has not changed (a deletion hides a document before the update that drops it).
async function follow(force) {
  const h = await health();
  if (!h || h.status !== "ok") {
    $("footer").textContent = !h ? "无法连接服务，正在重试…" : h.message || "服务正在启动，请稍候…";
    shown = null;  // the footer now says why: filled again as soon as the service serves
    return false;
  }
  snapshot = h.snapshot;
  if (!force && h.snapshot === shown) return true;
  try {
    const resp = await fetch("/api/documents");
    if (!resp.ok) return false;
    const docs = (await resp.json()).documents;
    shown = h.snapshot;
    fillFilterChoices(docs);
    sayIndexed(h, docs);
    if ($("admin").open) showDocuments(docs);
  } catch (err) { return false; }  // tried again at the next look
  return true;
}

// Until the service serves, look every second or so; then every 10 s for changes from elsewhere (files
// dropped into the corpus folder, another operator), while the tab is in view.
async function followService() {
  for (let wait = 1000; !(await follow(false)); wait = Math.min(wait * 1.5, 5000)) await sleep(wait);
  setInterval(() => { if (document.visibilityState === "visible") follow(false); }, 10000);
}

// --- 查看原文: the whole document, the passage highlighted, the outline navigable --------------

let readerFrom = null;

function closeReader() {
  if ($("reader").hidden) return;
  $("reader").hidden = true;
  $("results").hidden = false;
  if (readerFrom) readerFrom.focus();
}

// The text as nodes: an anchor before each heading of the outline, a 第N页 rule where each page of a PDF
// begins, the passage [start, end) in <mark>.
function renderText(article, text, outline, pages, start, end) {
  const cuts = new Set([0, text.length, start, end]);
  outline.forEach((o) => cuts.add(o.start));
  pages.forEach((p) => cuts.add(p.start));
  const points = [...cuts].filter((x) => x >= 0 && x <= text.length).sort((a, b) => a - b);
  const heads = new Map(outline.map((o, i) => [o.start, i]));
  const breaks = new Map(pages.map((p) => [p.start, p.page]));
  article.replaceChildren();
  for (let n = 0; n + 1 < points.length; n++) {
    const a = points[n], b = points[n + 1];
    if (breaks.has(a)) article.appendChild(el("span", "page-break", pageName(breaks.get(a))));
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
  if (!$("reader").contains(document.activeElement)) readerFrom = document.activeElement;  // kept from a version to the next
  try {
    const resp = await fetch("/api/documents/" + encodeURIComponent(hit.doc_id) + "/text");
    const doc = await resp.json();
    if (!resp.ok) { status.className = "warn"; status.textContent = failure(doc, resp.status); return; }
    const m = doc.metadata || {};
    $("reader-title").textContent = m.title || doc.title || doc.source;
    const facts = metaFacts(m);
    if (m.adopted) facts.push(m.adopted + " 通过");
    for (const r of m.revised || []) facts.push(r + " 修正");
    if (hit.page) facts.push("本段在" + pageName(hit.page));
    const tag = validity(hit, true);
    $("reader-validity").replaceChildren(...(tag ? tag.childNodes : []));
    $("reader-validity").hidden = !tag;
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
    renderText($("reader-text"), doc.text, doc.outline, doc.pages || [], hit.start, hit.end);
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

followService();

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

// Each cell of a list's rows labelled with its column's head: on a phone the rows are cards, a label a line.
function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; else td.classList.add("row-actions"); });
  }
}

async function loadDocuments() {
  try {
    const resp = await fetch("/api/documents");
    const data = await resp.json();
    if (!resp.ok) { adminMessage(failure(data, resp.status), true); return; }
    showDocuments(data.documents);
    fillFilterChoices(data.documents);
  } catch (err) {
    adminMessage("无法连接服务，请检查网络或稍后重试。", true);
  }
}

// The last cell of an admin row: its 删除 button, named for a screen reader by what it deletes.
function deleteCell(name, remove) {
  const del = button("delete", "删除");
  del.setAttribute("aria-label", name);
  del.addEventListener("click", remove);
  const last = cell();
  last.appendChild(del);
  return last;
}

// The admin list of documents (its times in the reader's own time zone).
function showDocuments(docs) {
  const body = $("documents").querySelector("tbody");
  body.replaceChildren();
  for (const doc of docs) {
    const tr = el("tr");
    tr.dataset.docId = doc.doc_id;
    const m = doc.metadata || {};
    tr.append(cell("doc-source", doc.source), cell("", doc.title), cell("doc-issuer", m.issuer || ""));
    tr.append(cell("doc-number", m.doc_number || ""), cell("doc-date", m.date || ""));
    tr.append(cell("num", String(doc.chunks)), cell("num", humanSize(doc.size)), cell("when", localTime(doc.indexed_at)));
    tr.appendChild(deleteCell("删除 " + doc.source, () => removeDocument(doc)));
    body.appendChild(tr);
  }
  labelCells($("documents"));
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
      await follow(true);  // the document list, the filters and the footer, as the index now stands
      await loadDocuments();
      return job;
    }
    await sleep(500);
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

function tokenState(text, kind) {
  $("token-state").className = kind || "";
  $("token-state").textContent = text;
}

// Whether the service takes `given`, asked with the cheapest admin call (one reader's mark): "ok", "wrong",
// "off" (the service has no admin token) or "unknown" (out of reach).
async function tokenVerdict(given) {
  try {
    const resp = await fetch("/api/feedback?limit=1", { headers: { Authorization: "Bearer " + given } });
    if (resp.ok) return "ok";
    return { 401: "wrong", 403: "off" }[resp.status] || "unknown";
  } catch (err) {
    return "unknown";
  }
}

const VERDICTS = {
  ok: ["令牌有效，已保存在本标签页中。", "ok"],
  wrong: ["令牌无效：服务拒绝了这个令牌，未保存，请检查后重新输入。", "bad"],
  off: ["服务没有开启管理功能（未设置 POLICYQA_ADMIN_TOKEN），令牌未保存。", "bad"],
  unknown: ["暂时无法验证令牌（服务无法连接），已先保存在本标签页中。", ""],
};

// Saved only when the service takes it (or cannot be asked now); the page says which.
$("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const given = $("token").value.trim();
  if (!given) { tokenState("请先填写令牌。", "bad"); return; }
  tokenState("正在验证令牌…");
  const verdict = await tokenVerdict(given);
  if (verdict === "ok" || verdict === "unknown") {
    sessionStorage.setItem(TOKEN_KEY, given);
    $("token").value = "";
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
  tokenState(...VERDICTS[verdict]);
  loadQuestions();
  loadFeedback();
});

$("token-clear").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  tokenState("令牌已清除。");
  loadQuestions();
  loadFeedback();
});

const NO_FILE = $("file-name").textContent;
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  $("file-name").textContent = file ? file.name + "（" + humanSize(file.size) + "）" : NO_FILE;
});
$("upload-form").addEventListener("reset", () => { $("file-name").textContent = NO_FILE; });

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

// The document leaves the lists at once (the service hides it), and the counts follow when the update is done.
function removeDocument(doc) {
  const url = "/api/documents/" + encodeURIComponent(doc.doc_id);
  return adminDelete("删除 " + doc.source + "？", url, (data) => "已删除 " + data.source + "。", loadDocuments);
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
    tr.appendChild(deleteCell("删除常见问题 " + q.q, () => removeKnown(q)));
    body.appendChild(tr);
  }
  labelCells($("questions"));
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
    tr.append(cell("num", c.helpful + " / " + c.unhelpful), cell("when", localTime(m.time)));
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
  labelCells($("feedback"));
}

$("admin").addEventListener("toggle", () => {
  if ($("admin").open) { loadDocuments(); showStatus(); loadQuestions(); loadFeedback(); }
});
