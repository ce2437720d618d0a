SELECT sha256, result, skip_reason, skip_detail
FROM vision_results
WHERE provider_key = %(provider_key)s AND sha256 = ANY(%(shas)s);
