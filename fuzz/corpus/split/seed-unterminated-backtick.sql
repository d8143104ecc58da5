SELECT `ident;
