#!/usr/bin/env python3
"""Doxygen input filter for README.md (the reference's main page), which stays as GitHub shows it.

Usage (doxygen appends the file): readme_filter.py SOURCE_ROOT HTML_DIR README.md

- Headings get the anchors GitHub gives them: the README links to its own sections as
  `[below](#more-than-one-machine)`, and doxygen 1.9.4 names headings autotoc_md<N> instead, so
  `{#slug}` (doxygen's explicit heading id) is appended, the slug computed as GitHub does: lower
  case, punctuation dropped, spaces to hyphens, repeats numbered.
- Bold code (`**`SharedArray<T>`**`), which doxygen 1.9.4 leaves as asterisks, becomes
  `<b>`...`</b>`.
- Links and images to files of the repository (`examples/quickstart.cpp`, `plots/*.png`) are
  relative to the source root; they are made relative to HTML_DIR, so they open from the pages.
Fenced code is left alone.
"""
import os
import re
import sys

root, html_dir, readme = sys.argv[1:4]
to_root = os.path.relpath(root, html_dir)


def relink(match):
    target = match.group(2)
    if os.path.exists(os.path.join(root, target)):
        target = os.path.join(to_root, target)
    return match.group(1) + target + ")"


seen = {}
fence = None
with open(readme, encoding="utf-8") as f:
    for line in f:
        text = line.rstrip("\n")
        marker = re.match(r"\s*(```|~~~)", text)
        if marker:
            if fence is None:
                fence = marker.group(1)
            elif marker.group(1) == fence:
                fence = None
            print(text)
            continue
        if fence:
            print(text)
            continue
        text = re.sub(r"(\]\()([^)#:\s]+)\)", relink, text)
        text = re.sub(r"\*\*(`[^*]*`)\*\*", r"<b>\1</b>", text)
        heading = re.match(r"(#{2,6})\s+(.*?)\s*#*\s*$", text)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(2).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            text += " {#%s}" % (slug if n == 0 else "%s-%d" % (slug, n))
        print(text)
