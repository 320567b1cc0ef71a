"""Files -> Documents -> passages: formats, loaders, cleaning, metadata, Chinese text, chunking, the corpus folder."""
