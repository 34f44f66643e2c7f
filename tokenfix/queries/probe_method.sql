-- The HTTP method of the request a probe's next statement stands for (PostgREST sets it per
-- request): LOCAL, undone with the probe's savepoint.
SELECT set_config('request.method', %(method)s, true)
