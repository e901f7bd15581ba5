// Placeholder entry point; the operator host is written in issue 3.
return 0;
