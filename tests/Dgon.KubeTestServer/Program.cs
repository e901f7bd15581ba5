// Placeholder entry point; replaced by the test server's standalone host.
return 0;
