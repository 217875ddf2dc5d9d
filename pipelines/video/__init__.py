"""Video-text clips (WebVid, Panda-70M): ingest with cutting, curation, Emu3 video tokens and Emu-style frame export."""
