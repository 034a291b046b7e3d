/**
 * The API reference page at /docs: Swagger UI (swagger-ui-dist, served from the Worker's own
 * assets under /docs/, so it works offline) rendering /openapi.json.
 */
export const REFERENCE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-jobs API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#reference", deepLinking: true, tryItOutEnabled: false, validatorUrl: null });
</script>
</body>
</html>
`;
