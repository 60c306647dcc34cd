-- Executions may read a context before running and write their output back as a layer.
ALTER TABLE executions ADD COLUMN context_id text NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN result_layer_id text NOT NULL DEFAULT '';
