"""`cpo content index`: load a content folder and push it into the Azure AI Search index.

Wired into flows/cli.py by `add_parser(sub)` in build_parser; imports stay inside the command so
`cpo --help` does not load the Azure SDK.
"""
from __future__ import annotations


def add_parser(subparsers) -> None:
    content = subparsers.add_parser("content", help="manage the approved content in a search backend")
    verbs = content.add_subparsers(dest="content_command", required=True)
    index = verbs.add_parser("index", help="create or update the Azure AI Search index and upload the content "
                                           "(needs AZURE_SEARCH_ENDPOINT, AZURE_SEARCH_API_KEY, AZURE_SEARCH_INDEX)")
    index.add_argument("--content", required=True, help="folder of .md/.txt/.json documents or one .jsonl")
    index.set_defaults(func=cmd_content_index)


def cmd_content_index(args) -> int:
    from tasks.content import load_documents
    from tasks.retrieval.azure_search import SearchSettings, index_documents

    settings = SearchSettings.from_env()  # fail on a missing variable before reading any content
    documents = load_documents(args.content)
    n = index_documents(documents)
    print(f"indexed {n} documents from {args.content} into Azure AI Search index '{settings.index}' "
          f"at {settings.endpoint}")
    return 0
