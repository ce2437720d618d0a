-- Every cached vision result, as vision_store takes them (the benchmark warms a cache with them).
SELECT sha256, provider_key, result, skip_reason, skip_detail, duration_ms FROM vision_results ORDER BY sha256;
