"""Vector memory: code chunks, phase summaries, failure fixes and rules in Qdrant (local mode
on disk, or a server), retrieved by lexical (BM25 sparse) vectors and, with an embeddings
server, dense vectors fused with them."""
