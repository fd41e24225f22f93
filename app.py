"""The browser UI: ``python app.py`` (same as ``qa serve``) → http://127.0.0.1:7860.

Chat with streamed, cited answers; a sources panel with each cited sentence highlighted in its article; a library
tab to upload articles and rebuild the index; settings; `/ask` and `/search` API endpoints. The code is in
`qa/ui.py`; `python app.py --help` lists the options (index, docs folder, host, port, share).
"""

from qa.ui import main

if __name__ == "__main__":
    main()
