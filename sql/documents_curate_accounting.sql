-- A document curation folder's kept images are exactly its curated keys (what `tessera tokenize --curated` reads).
-- Views (pipelines/documents/stats.py): image_ledger, curated(key).
SELECT
    (SELECT count(*) FROM (SELECT DISTINCT key FROM image_ledger WHERE outcome = 'kept'
                           EXCEPT SELECT key FROM curated))::BIGINT AS kept_not_curated,
    (SELECT count(*) FROM (SELECT key FROM curated
                           EXCEPT SELECT key FROM image_ledger WHERE outcome = 'kept'))::BIGINT AS curated_not_kept;
