SELECT id, name FROM tenants ORDER BY id;
