-- Farms, fields and their boundary history. No PostGIS in the embedded PostgreSQL: a boundary is kept as
-- GeoJSON (jsonb, what the API answers) and WKB (bytea, what the exact spatial tests load), with its
-- bounding box as a core `box` column under a GiST index, which narrows every spatial query to candidates.

CREATE TABLE farms (
    id              uuid PRIMARY KEY,
    organization_id text NOT NULL,
    name            text NOT NULL,
    longitude       double precision,
    latitude        double precision,
    timezone        text NOT NULL DEFAULT 'UTC',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name),
    UNIQUE (id, organization_id)
);

CREATE TABLE fields (
    id                  uuid PRIMARY KEY,
    organization_id     text NOT NULL,
    farm_id             uuid NOT NULL,
    name                text NOT NULL,
    labels              jsonb NOT NULL DEFAULT '{}',
    status              text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ARCHIVED')),
    notes               text NOT NULL DEFAULT '',
    predecessor_ids     uuid[] NOT NULL DEFAULT '{}',
    successor_ids       uuid[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    archived_at         timestamptz,
    -- The current boundary (NULL without one), repeated from its version row so reads and spatial
    -- queries touch one table.
    boundary            jsonb,
    boundary_wkb        bytea,
    boundary_version    integer NOT NULL DEFAULT 0,
    boundary_valid_from timestamptz,
    area_m2             double precision,
    workable_m2         double precision,
    perimeter_m         double precision,
    min_lon             double precision,
    min_lat             double precision,
    max_lon             double precision,
    max_lat             double precision,
    centroid_lon        double precision,
    centroid_lat        double precision,
    vertex_count        integer NOT NULL DEFAULT 0,
    bbox                box GENERATED ALWAYS AS (box(point(min_lon, min_lat), point(max_lon, max_lat))) STORED,
    -- A field's farm is of its own organization.
    FOREIGN KEY (farm_id, organization_id) REFERENCES farms (id, organization_id),
    UNIQUE (id, organization_id)
);

-- A name is unique among a farm's active fields (archived ones keep theirs: a split part may reuse it).
CREATE UNIQUE INDEX fields_active_name ON fields (farm_id, lower(name)) WHERE status = 'ACTIVE';
CREATE INDEX fields_by_organization ON fields (organization_id, name, id);
-- Only active fields take part in spatial queries and overlap checks.
CREATE INDEX fields_active_bbox ON fields USING gist (bbox) WHERE status = 'ACTIVE' AND boundary IS NOT NULL;

CREATE TABLE boundary_versions (
    field_id        uuid NOT NULL,
    organization_id text NOT NULL,
    version         integer NOT NULL,
    boundary        jsonb NOT NULL,
    area_m2         double precision NOT NULL,
    workable_m2     double precision NOT NULL,
    perimeter_m     double precision NOT NULL,
    min_lon         double precision NOT NULL,
    min_lat         double precision NOT NULL,
    max_lon         double precision NOT NULL,
    max_lat         double precision NOT NULL,
    centroid_lon    double precision NOT NULL,
    centroid_lat    double precision NOT NULL,
    vertex_count    integer NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    reason          text NOT NULL,
    PRIMARY KEY (field_id, version),
    FOREIGN KEY (field_id, organization_id) REFERENCES fields (id, organization_id),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);

CREATE INDEX boundary_versions_at ON boundary_versions (field_id, valid_from DESC);

CREATE TABLE seasons (
    id                    uuid PRIMARY KEY,
    organization_id       text NOT NULL,
    field_id              uuid NOT NULL,
    crop                  text NOT NULL,
    variety               text NOT NULL DEFAULT '',
    planned_planting_date date,
    planned_harvest_date  date,
    actual_planting_date  date,
    actual_harvest_date   date,
    yield_amount          double precision NOT NULL DEFAULT 0,
    yield_unit            text NOT NULL DEFAULT '',
    harvested_m2          double precision NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (field_id, organization_id) REFERENCES fields (id, organization_id)
);

CREATE INDEX seasons_by_field ON seasons (field_id, created_at DESC, id DESC);

CREATE TABLE activities (
    id              uuid PRIMARY KEY,
    organization_id text NOT NULL,
    field_id        uuid NOT NULL,
    type            text NOT NULL,
    day             date NOT NULL,
    quantity        double precision NOT NULL DEFAULT 0,
    unit            text NOT NULL DEFAULT '',
    geometry        jsonb,
    notes           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (field_id, organization_id) REFERENCES fields (id, organization_id)
);

CREATE INDEX activities_by_field ON activities (field_id, created_at DESC, id DESC);
