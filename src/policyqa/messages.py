"""Chinese messages for people, beside the API's English `error` (kept for machines, logs and the CLI).

One table of the library's error sentences, matched in order; what they name (a file, a count, a setting)
is carried over as it is, except where a template writes `{n:bytes}`: only byte counts read as sizes;
`{formats}` is the list of formats people may upload. An
error that matches none gets its status's general message, so every error a person can see on the page is
in Chinese.
"""

from __future__ import annotations

import re

from policyqa.ingest import formats

# (pattern over the English error, Chinese template over its groups)
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^the query is empty"), "请输入问题，例如：南京有几个国家级创新型产业集群？"),
    (re.compile(r"^the query is (\d+) characters long"), "问题太长（{0} 个字符），最多 500 个字符。"),
    (re.compile(r"lone surrogate|unable to parse raw data as a unicode string"), "文字中含有无效字符，请检查后重试。"),
    (re.compile(r"^doc_id: no document ([0-9a-f, ]+);"), "没有编号为 {0} 的文档，它可能已被删除。"),
    (re.compile(r"^doc_id: "), "文档编号应为 12 位十六进制数字。"),
    (re.compile(r"^(after|before): .* is not a date"), "日期格式不对，请写成 年-月-日，例如 2024-03-05。"),
    (re.compile(r"^after \((.+)\) is later than before \((.+)\)"), "起始日期 {0} 晚于截止日期 {1}。"),
    (re.compile(r"^folder: "), "文件夹不在文档库中。"),
    (re.compile(r"^issuer: "), "发文机关最多 100 个字符。"),
    (
        re.compile(r"^(.+?): the file is (\d+) bytes; the limit is (\d+) bytes"),
        "文件 {0} 太大（{1:bytes}），上限为 {2:bytes}（可由 POLICYQA_MAX_UPLOAD_BYTES 调整），请拆分文件。",
    ),
    (
        re.compile(r"^the upload is over the limit of (\d+) bytes"),
        "文件太大，上限为 {0:bytes}（可由 POLICYQA_MAX_UPLOAD_BYTES 调整），请拆分文件。",
    ),
    (re.compile(r"request body is over the limit of (\d+) bytes"), "请求内容太长（上限 {0:bytes}）。"),
    (re.compile(r"^the request body took longer than (\S+) s"), "请求内容在 {0} 秒内没有传完，请重新发送。"),
    (
        re.compile(r"^the requested range is outside the file"),
        "请求的文件范围超出了文件大小，请去掉 Range 后重新下载。",
    ),
    (re.compile(r"^the request is malformed"), "请求格式有误，请检查后重试。"),
    (re.compile(r"^(.+?): the file is empty"), "文件 {0} 是空的。"),
    (re.compile(r"^(.+?): the file is neither text"), "文件 {0} 的格式不受支持，请上传 {formats} 文件。"),
    (re.compile(r"^(.+?): unsupported file type"), "文件 {0} 的格式不受支持，请上传 {formats} 文件。"),
    (re.compile(r"^(.+?): too many documents of that name"), "同名文档 {0} 太多，请先删除一些，或选择替换。"),
    (
        re.compile(r"^(.+?): .*over the limit of (\d+) \(POLICYQA_MAX_HTML_DEPTH\)"),
        "文件 {0} 的 HTML 嵌套超过 {1} 层（可由 POLICYQA_MAX_HTML_DEPTH 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): .*over the limit of (\d+) \(POLICYQA_MAX_PDF_PAGES\)"),
        "文件 {0} 超过 {1} 页（可由 POLICYQA_MAX_PDF_PAGES 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): .*over the limit of (\d+) \(POLICYQA_MAX_NODES\)"),
        "文件 {0} 的段落、表格单元或 HTML 元素超过 {1} 个（可由 POLICYQA_MAX_NODES 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): .*over the limit of (\d+) pixels \(POLICYQA_MAX_IMAGE_PIXELS\)"),
        "文件 {0} 中的图片超过 {1} 像素（可由 POLICYQA_MAX_IMAGE_PIXELS 调整），请以较低的分辨率扫描。",
    ),
    (
        re.compile(r"^(.+?): .*over the limit of (\d+) \(POLICYQA_MAX_OCR_PAGES\)"),
        "文件 {0} 需要文字识别（OCR）的页数超过 {1} 页（可由 POLICYQA_MAX_OCR_PAGES 调整），请拆分文件。",
    ),
    (
        # the limit as limits.py wrote it: a count or a depth ("256"), or a size with its unit ("64 MiB")
        re.compile(r"^(.+?): .*over the limit of (.+?) \((?:\d+ x )?(POLICYQA_[A-Z_]+)\)"),
        "文件 {0} 超出解析上限 {1}（可由 {2} 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): parsing took longer than (\S+) s.*POLICYQA_OCR_SECONDS"),
        "识别扫描件 {0} 超过 {1} 秒（可由 POLICYQA_OCR_SECONDS 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): parsing needs more than (\S+ MiB) of memory \(POLICYQA_OCR_MEMORY_BYTES\)"),
        "识别扫描件 {0} 超出内存上限 {1}（可由 POLICYQA_OCR_MEMORY_BYTES 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): parsing (?:used more|took longer) than (\S+) s"),
        "解析文件 {0} 超过 {1} 秒（可由 POLICYQA_PARSE_SECONDS 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): (?:the parser died.*memory limit of|parsing needs more than) (\S+ MiB)"),
        "解析文件 {0} 超出内存上限 {1}（可由 POLICYQA_PARSE_MEMORY_BYTES 调整），请拆分文件。",
    ),
    (
        re.compile(r"^(.+?): the document is nested too deeply"),
        "文件 {0} 嵌套层次太深，无法解析（可由 POLICYQA_MAX_HTML_DEPTH 调整），请拆分文件。",
    ),
    (re.compile(r"^(.+?): the file name is not UTF-8"), "文件名 {0} 不是 UTF-8 编码，未编入索引，请重命名该文件。"),
    (re.compile(r"^(.+?): (?:the file is a|a folder on its path is a) symbolic link"), "{0} 是符号链接，不会被读取。"),
    (re.compile(r"^(.+?): not a regular file"), "{0} 不是普通文件，未编入索引。"),
    (re.compile(r"^(.+?): cannot determine the text encoding"), "无法识别文件 {0} 的文字编码，请另存为 UTF-8。"),
    (re.compile(r"^(.+?): no text found"), "文件 {0} 中没有找到文字（空文件，或图片中没有可识别的文字）。"),
    (re.compile(r"^(.+?): cannot (?:be )?read"), "无法读取文件 {0}（可能已损坏）。"),
    (re.compile(r"send the document as multipart|field 'file' with the document is required"), "请选择要上传的文件。"),
    (re.compile(r"^admin endpoints are disabled"), "管理功能未开启：服务需设置 POLICYQA_ADMIN_TOKEN 后重启。"),
    (re.compile(r"^missing or wrong admin token"), "管理令牌缺失或不正确，请在“管理令牌”中填写正确的令牌。"),
    (re.compile(r"^the question is (\d+) characters long"), "问题应为 2-500 个字符（现为 {0} 个）。"),
    (re.compile(r"^contains is (\d+) characters long"), "原文片段应为 2-2000 个字符（现为 {0} 个）。"),
    (re.compile(r"^(.+?) does not contain "), "文档 {0} 中找不到这段原文，请从回答问题的段落中复制一句。"),
    (
        re.compile(r" runs over two passages of (.+?); "),
        "这段原文跨越了文档 {0} 的两个段落，请给出一个段落之内的文字，例如回答问题的那句话。",
    ),
    (re.compile(r"already a known question of (.+?) \(id"), "该问题已是文档 {0} 的常见问题。"),
    (re.compile(r"^no known question with id"), "找不到该常见问题，它可能已被删除。"),
    (re.compile(r"^give the document"), "请指定问题所属的文档（doc_id 或 source）。"),
    (re.compile(r"^give the passage"), "请给出回答问题的原文片段（contains）或段落（chunk_id）。"),
    (re.compile(r"^no passage "), "找不到该段落，索引可能已更新，请重新搜索后再试。"),
    (re.compile(r"^(.+?) is not a document of the index"), "文档 {0} 不在索引中。"),
    (re.compile(r"^too many marks; retry in (\d+) s"), "反馈太频繁，请 {0} 秒后再试。"),
    (re.compile(r"^no job "), "找不到该索引任务（只保留最近 50 个任务）。"),
    (re.compile(r"is not a document id"), "文档编号应为 12 位十六进制数字。"),
    (re.compile(r"^no document with id|^the file of .* is no longer"), "找不到该文档，它可能已被删除。"),
    (re.compile(r"^the index holds no text for"), "索引中还没有这份文档的全文，请在下次索引更新后再试。"),
    (re.compile(r"^no endpoint "), "没有这个接口，接口说明见 /docs。"),
    (
        re.compile(r"^the request body is not (?:valid JSON|a JSON object)"),
        "请求内容不是有效的 JSON 对象，请以 Content-Type: application/json 发送，"
        '例如 {{"q": "南京有几个国家级创新型产业集群？", "k": 5}}。',
    ),
    (
        re.compile(r"^(\S+) is not allowed on (\S+); allowed methods: (.+?) \("),
        "接口 {1} 不支持 {0} 请求，可用的请求方式：{2}（接口说明见 /docs）。",
    ),
    (re.compile(r"(ENOSPC|EDQUOT|EFBIG)"), "服务器磁盘空间不足，请联系管理员。"),
    (re.compile(r"(EROFS|EIO)"), "服务器磁盘不可写，请联系管理员。"),
    (
        re.compile(r"^the index could not be written"),
        "索引无法写入服务器磁盘（可能已满或只读），请联系管理员；更新会自动重试。",
    ),
    (re.compile(r"(ENAMETOOLONG|EILSEQ)"), "文件名太长或无效，请改名后重试。"),
    (re.compile(r"(EACCES|EPERM)"), "服务无权写入文档库，请联系管理员。"),
    (re.compile(r"built with model"), "索引由另一个模型建立，需由管理员重建索引后才能使用。"),
    (re.compile(r"^no documents found in"), "文档库中没有可索引的文档，请先添加文件。"),
    (re.compile(r"cancelled"), "索引任务已取消。"),
]

_BY_FIELD = {
    "q": "请输入问题（1-500 个字符）。",
    "k": "结果数须在 1 到 50 之间。",
    "doc_id": "文档编号应为 12 位十六进制数字。",
    "file": "请选择要上传的文件。",
    "after": "日期格式不对，请写成 年-月-日，例如 2024-03-05。",
    "before": "日期格式不对，请写成 年-月-日，例如 2024-03-05。",
    "folder": "文件夹名称太长。",
    "issuer": "发文机关最多 100 个字符。",
    "contains": "原文片段应为文档中的一段文字（2-2000 个字符）。",
    "chunk_id": "段落编号应为 16 位十六进制数字。",
    "helpful": "请选择“有帮助”或“没帮助”（true 或 false）。",
    "snapshot": "索引版本名称最多 100 个字符。",
}

_BY_STATUS = {
    400: "请求无效，请检查后重试。",
    401: "管理令牌缺失或不正确。",
    403: "没有权限执行此操作。",
    404: "找不到请求的内容。",
    405: "不支持这种请求方式。",
    408: "请求内容发送太慢，请重新发送。",
    409: "操作失败，请重试；如果一直失败，请联系管理员。",
    413: "内容太大。",
    416: "请求的文件范围无效。",
    422: "输入有误，请检查后重试。",
    429: "请求太频繁，请稍后再试。",
    500: "服务内部错误，请稍后重试；详情见服务器日志。",
    503: "服务正在启动或索引尚未就绪，请稍后重试。",
    507: "服务器存储空间不足，请联系管理员。",
}


class _Named(str):
    """What an error names, shown as it is; `{n:bytes}` in a template shows a byte count as a size instead.
    Only a template says which groups are bytes: a count, a depth, an id or a length is never a size."""

    def __format__(self, spec: str) -> str:
        return _size(self) if spec == "bytes" else str.__format__(self, spec)


def _size(text: str) -> str:
    if not text.isdigit():
        return text
    n = int(text)
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:  # a limit set in whole units reads as set (20 MB), a size beside it with a decimal
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} 字节"


def chinese(error: str, status: int = 422, field: str | None = None) -> str:
    """The Chinese message for an API error (English `error`, HTTP `status`, and the `field` it names)."""
    for pattern, template in _RULES:
        found = pattern.search(error)
        if found:
            named = (_Named(g or "") for g in found.groups())
            return template.format(*named, formats=formats.extensions("、", " 或 "))
    if field and field in _BY_FIELD:
        return _BY_FIELD[field]
    return _BY_STATUS.get(status, "出错了，请稍后重试。" if status >= 500 else "请求无效，请检查后重试。")
