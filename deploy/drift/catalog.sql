-- The schema of the current database as one JSON document, read from the catalogs by any
-- role that may connect: what the migrations (and the privilege model) made, for the drift
-- check to compare. Left out on purpose: the system schemas, what extensions own, owners,
-- grantors, storage and statistics, and anything that is data rather than schema.
WITH
extension_owned AS (
    SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'
),
schemas AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
      AND (n.oid, 'pg_catalog.pg_namespace'::regclass) NOT IN (SELECT objid, classid FROM extension_owned)
),
relations AS (
    SELECT c.oid, s.nspname, c.relname, c.relkind, c.relowner, c.relacl,
           c.relrowsecurity, c.relforcerowsecurity, c.relpersistence
    FROM pg_catalog.pg_class c
    JOIN schemas s ON s.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND (c.oid, 'pg_catalog.pg_class'::regclass) NOT IN (SELECT objid, classid FROM extension_owned)
),
functions AS (
    SELECT p.oid, s.nspname, p.proname, p.prokind, p.proowner, p.proacl,
           pg_catalog.pg_get_function_identity_arguments(p.oid) AS arguments
    FROM pg_catalog.pg_proc p
    JOIN schemas s ON s.oid = p.pronamespace
    WHERE (p.oid, 'pg_catalog.pg_proc'::regclass) NOT IN (SELECT objid, classid FROM extension_owned)
),
types AS (
    SELECT t.oid, s.nspname, t.typname, t.typtype, t.typowner, t.typacl, t.typbasetype,
           t.typtypmod, t.typnotnull, t.typdefault, t.typrelid
    FROM pg_catalog.pg_type t
    JOIN schemas s ON s.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd', 'r')
           OR (t.typtype = 'c' AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c'))
      AND (t.oid, 'pg_catalog.pg_type'::regclass) NOT IN (SELECT objid, classid FROM extension_owned)
),
acl_items AS (
    SELECT 'schema' AS kind, NULL::name AS schema, s.nspname AS name, NULL::text AS part,
           s.nspowner AS owner,
           pg_catalog.aclexplode(coalesce(s.nspacl, pg_catalog.acldefault('n', s.nspowner))) AS item
    FROM schemas s
    UNION ALL
    SELECT CASE r.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                WHEN 'm' THEN 'materialized view' ELSE 'table' END,
           r.nspname, r.relname, NULL, r.relowner,
           pg_catalog.aclexplode(coalesce(r.relacl, pg_catalog.acldefault(
               (CASE r.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", r.relowner)))
    FROM relations r
    UNION ALL
    SELECT 'column', r.nspname, r.relname, a.attname::text, r.relowner,
           pg_catalog.aclexplode(a.attacl)
    FROM relations r
    JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE a.attacl IS NOT NULL
    UNION ALL
    SELECT CASE f.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
           f.nspname, f.proname, f.arguments, f.proowner,
           pg_catalog.aclexplode(coalesce(f.proacl, pg_catalog.acldefault('f', f.proowner)))
    FROM functions f
    UNION ALL
    SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END,
           t.nspname, t.typname, NULL, t.typowner,
           pg_catalog.aclexplode(coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner)))
    FROM types t
)
SELECT pg_catalog.json_build_object(
    'server_version', pg_catalog.current_setting('server_version'),
    'schemas', (SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object('name', nspname)), '[]') FROM schemas),
    'relations', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', nspname, 'name', relname, 'kind', relkind,
            'row_security', relrowsecurity, 'force_row_security', relforcerowsecurity,
            'unlogged', relpersistence = 'u',
            'definition', CASE WHEN relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(oid) END)), '[]')
        FROM relations),
    'columns', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', r.nspname, 'table', r.relname, 'name', a.attname,
            'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
            'not_null', a.attnotnull,
            'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid),
            'identity', a.attidentity, 'generated', a.attgenerated,
            'collation', CASE WHEN a.attcollation <> t.typcollation
                              THEN (SELECT collname FROM pg_catalog.pg_collation WHERE oid = a.attcollation) END)), '[]')
        FROM relations r
        JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE r.relkind IN ('r', 'p', 'f')),
    'indexes', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', r.nspname, 'table', r.relname, 'name', i.relname,
            'definition', pg_catalog.pg_get_indexdef(x.indexrelid))), '[]')
        FROM pg_catalog.pg_index x
        JOIN relations r ON r.oid = x.indrelid
        JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
        WHERE NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_constraint k
            WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))),
    'constraints', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', r.nspname, 'table', r.relname, 'name', k.conname,
            'definition', pg_catalog.pg_get_constraintdef(k.oid))), '[]')
        FROM pg_catalog.pg_constraint k
        JOIN relations r ON r.oid = k.conrelid
        WHERE k.contype <> 'n'),
    'triggers', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', r.nspname, 'table', r.relname, 'name', g.tgname,
            'definition', pg_catalog.pg_get_triggerdef(g.oid))), '[]')
        FROM pg_catalog.pg_trigger g
        JOIN relations r ON r.oid = g.tgrelid
        WHERE NOT g.tgisinternal),
    'policies', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', r.nspname, 'table', r.relname, 'name', p.polname,
            'command', p.polcmd, 'permissive', p.polpermissive,
            'roles', (SELECT pg_catalog.array_agg(CASE WHEN g = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(g)::text END ORDER BY 1)
                      FROM pg_catalog.unnest(p.polroles) g),
            'using', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
            'check', pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))), '[]')
        FROM pg_catalog.pg_policy p
        JOIN relations r ON r.oid = p.polrelid),
    'sequences', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', r.nspname, 'name', r.relname,
            'type', pg_catalog.format_type(q.seqtypid, NULL), 'start', q.seqstart,
            'increment', q.seqincrement, 'min', q.seqmin, 'max', q.seqmax,
            'cache', q.seqcache, 'cycle', q.seqcycle)), '[]')
        FROM pg_catalog.pg_sequence q
        JOIN relations r ON r.oid = q.seqrelid),
    'functions', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', nspname, 'name', proname, 'arguments', arguments, 'kind', prokind,
            'definition', CASE WHEN prokind IN ('f', 'p', 'w') THEN pg_catalog.pg_get_functiondef(oid) END)), '[]')
        FROM functions),
    'types', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'schema', t.nspname, 'name', t.typname, 'kind', t.typtype,
            'labels', (SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder)
                       FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid),
            'base', CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
            'not_null', t.typnotnull, 'default', t.typdefault,
            'checks', (SELECT pg_catalog.array_agg(k.conname || ': ' || pg_catalog.pg_get_constraintdef(k.oid) ORDER BY k.conname)
                       FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid),
            'attributes', (SELECT pg_catalog.array_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                           FROM pg_catalog.pg_attribute a
                           WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
            'subtype', (SELECT pg_catalog.format_type(g.rngsubtype, NULL) FROM pg_catalog.pg_range g WHERE g.rngtypid = t.oid))), '[]')
        FROM types t),
    'extensions', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object('name', extname)), '[]')
        FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'),
    'grants', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'kind', kind, 'schema', schema, 'name', name, 'part', part,
            'grantee', CASE WHEN (item).grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid((item).grantee)::text END,
            'privilege', (item).privilege_type, 'grantable', (item).is_grantable)), '[]')
        FROM acl_items
        WHERE (item).grantee <> owner),
    'default_privileges', (
        SELECT coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
            'role', pg_catalog.pg_get_userbyid(d.defaclrole)::text,
            'schema', (SELECT nspname FROM pg_catalog.pg_namespace WHERE oid = d.defaclnamespace),
            'objects', d.defaclobjtype,
            'grantee', CASE WHEN (d.item).grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid((d.item).grantee)::text END,
            'privilege', (d.item).privilege_type, 'grantable', (d.item).is_grantable)), '[]')
        FROM (SELECT defaclrole, defaclnamespace, defaclobjtype, pg_catalog.aclexplode(defaclacl) AS item
              FROM pg_catalog.pg_default_acl) d
        WHERE (d.item).grantee <> d.defaclrole)
);
